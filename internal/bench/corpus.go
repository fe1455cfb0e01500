// Package bench is docstream's built-in load generator (`docstream bench`)
// and its corpus: documents whose words match a known share of the corpus,
// so that a search's selectivity is a property of the query, the same at
// 10,000 and at 1,000,000 documents.
package bench

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// The corpus is a pure function of a document's number: document i of any
// run is the same document, so figures from different machines and sizes
// compare. Its vocabulary and how often each kind of word occurs:
//
//   - "document": in the title of 99 % of documents;
//   - "test": in the content of 95 %;
//   - the reference's other search words: "contract", "sales", "agreement"
//     in 20 % each, "Q4" and "2025" in 25 % each;
//   - Common: 100 invented words, one of them in each document's content
//     (each word in ~1 % of documents);
//   - Rare: 1,000 invented words, one in each document (~0.1 % each);
//   - Filler: everyday contract words, 20 per document, for realistic
//     lengths (a document's content is ~200 bytes).
//
// Invented words are 8 letters, consonant-vowel alternated, drawn with a
// fixed seed and at least 3 edits apart from each other, so that a fuzzy
// query (AUTO: 2 edits for 8 letters) for one of them, even with a typo,
// matches that word's documents only: its selectivity stays ~1 % or ~0.1 %.
var (
	Common, Rare = invent(100, 1000)
	Filler       = strings.Fields(`party parties shall herein payment term terms notice period clause section
		schedule annex obligation liability warranty delivery invoice price fee fees tax taxes
		signature signed effective date renewal termination breach remedy damages insurance
		confidential information license rights property owner buyer seller tenant landlord lease
		rent deposit service services provider client customer vendor supplier goods product
		quantity order purchase quote discount credit debit account bank transfer currency amount
		total balance due overdue interest penalty dispute arbitration court law jurisdiction
		governing amendment waiver assignment force majeure entire counterparts copy
		original version draft final review approval approved manager director officer employee
		staff team department office branch region quarter annual monthly weekly daily report`)
)

// Doc is one corpus document.
type Doc struct {
	Title     string
	Content   string
	CreatedBy string
	Status    string
	// Owner is the principal key of the user who created it ("user:" +
	// CreatedBy: the user whose token has that subject), and SharedWith
	// the grantee of its one view share, if any ("" for 90 % of the
	// corpus). So in --auth-mode=required one user may see ~0.11 % of the
	// corpus: ~0.1 % as owner, ~0.01 % shared with them.
	Owner      string
	SharedWith string
}

// ShareShare is the share of the corpus that is shared with one other
// user.
const ShareShare = 0.10

// UserSubject is the token subject of corpus user k (0 ≤ k < Creators),
// the creator, owner or grantee of ~0.1 % of the corpus each.
func UserSubject(k int) string { return fmt.Sprintf("user%d@bench.example", k) }

// Readers is the document's readers column: its owner and grantee, sorted
// as the document service keeps them.
func (d Doc) Readers() []string {
	if d.SharedWith == "" {
		return []string{d.Owner}
	}
	return slices.Sorted(slices.Values([]string{d.Owner, d.SharedWith}))
}

// statuses and their shares: most documents are young.
var statuses = []struct {
	name  string
	share float64
}{
	{"created", 0.40}, {"sent", 0.15}, {"viewed", 0.10}, {"pending", 0.10}, {"approved", 0.05},
	{"signed", 0.10}, {"completed", 0.05}, {"cancelled", 0.03}, {"archived", 0.02},
}

// Creators is how many distinct created_by values the corpus has
// (user0@bench.example … ): each creates ~0.1 % of documents.
const Creators = 1000

// Document returns corpus document i.
func Document(i int) Doc {
	r := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	var title []string
	if r.Float64() < 0.20 {
		title = append(title, "Sales")
	}
	if r.Float64() < 0.20 {
		title = append(title, "Agreement")
	}
	if i%100 != 99 {
		title = append(title, "Document")
	} else {
		title = append(title, "Memo")
	}
	if r.Float64() < 0.25 {
		title = append(title, "Q4")
	}
	if r.Float64() < 0.25 {
		title = append(title, "2025")
	}
	title = append(title, fmt.Sprintf("%d", i))

	words := make([]string, 0, 26)
	if r.Float64() < 0.95 {
		words = append(words, "test")
	}
	if r.Float64() < 0.20 {
		words = append(words, "contract")
	}
	words = append(words, Common[r.IntN(len(Common))], Rare[r.IntN(len(Rare))])
	for range 20 {
		words = append(words, Filler[r.IntN(len(Filler))])
	}
	r.Shuffle(len(words), func(a, b int) { words[a], words[b] = words[b], words[a] })

	status, x := statuses[len(statuses)-1].name, r.Float64()
	for _, s := range statuses {
		if x < s.share {
			status = s.name
			break
		}
		x -= s.share
	}
	creator := r.IntN(Creators)
	d := Doc{
		Title:     strings.Join(title, " "),
		Content:   strings.Join(words, " ") + ".",
		CreatedBy: UserSubject(creator),
		Status:    status,
		Owner:     "user:" + UserSubject(creator),
	}
	// Drawn last, so the fields above are what they were before the corpus
	// had owners.
	if r.Float64() < ShareShare {
		d.SharedWith = "user:" + UserSubject((creator+1+r.IntN(Creators-1))%Creators)
	}
	return d
}

// CreatedAt spreads documents over time, one a second from a fixed start,
// so that created-range filters select a known share.
func CreatedAt(i int) time.Time {
	return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
}

// Typo returns word with one letter replaced (a query a fuzzy search must
// still find).
func Typo(word string, r *rand.Rand) string {
	b := []byte(word)
	p := 1 + r.IntN(len(b)-1) // keep the first letter: the prefix a fuzzy query does not vary
	c := byte('a' + r.IntN(26))
	if c == b[p] {
		c = 'a' + (c-'a'+1)%26
	}
	b[p] = c
	return string(b)
}

// invent draws common+rare distinct 8-letter words, at least 3 edits
// apart from each other.
func invent(common, rare int) ([]string, []string) {
	const consonants, vowels = "bcdfghjklmnprstvz", "aeiou"
	r := rand.New(rand.NewPCG(1, 0xc0de))
	var out []string
	for len(out) < common+rare {
		b := make([]byte, 8)
		for i := range b {
			if i%2 == 0 {
				b[i] = consonants[r.IntN(len(consonants))]
			} else {
				b[i] = vowels[r.IntN(len(vowels))]
			}
		}
		w := string(b)
		ok := true
		for _, o := range out {
			if hamming(w, o) < 3 {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, w)
		}
	}
	return out[:common], out[common:]
}

// hamming counts differing positions of two words of equal length. For
// words that alternate consonants and vowels at the same positions an
// insertion or deletion breaks the pattern, so substitutions are the close
// edits that matter; TestInventedWordsAreFarApart checks the true edit
// distance.
func hamming(a, b string) int {
	d := 0
	for i := range a {
		if a[i] != b[i] {
			d++
		}
	}
	return d
}
