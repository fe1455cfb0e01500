package bench

import (
	"math"
	"strings"
	"testing"
)

// TestCorpusSharesAreAsDocumented counts, over 20,000 documents, the share
// of documents each documented kind of word occurs in.
func TestCorpusSharesAreAsDocumented(t *testing.T) {
	const n = 20_000
	count := map[string]int{}
	sees := map[string]int{} // documents each reader key may view
	shared := 0
	for i := range n {
		d := Document(i)
		if d.Owner != "user:"+d.CreatedBy || d.SharedWith == d.Owner {
			t.Fatalf("document %d: owner %q, created by %q, shared with %q", i, d.Owner, d.CreatedBy, d.SharedWith)
		}
		if d.SharedWith != "" {
			shared++
		}
		for _, k := range d.Readers() {
			sees[k]++
		}
		seen := map[string]bool{}
		for _, w := range strings.Fields(strings.ToLower(d.Title + " " + strings.TrimSuffix(d.Content, "."))) {
			if !seen[w] {
				seen[w] = true
				count[w]++
			}
		}
		if d != Document(i) {
			t.Fatal("a document is not a pure function of its number")
		}
	}
	share := func(w string) float64 { return float64(count[w]) / n }
	for w, want := range map[string]float64{"document": 0.99, "test": 0.95, "sales": 0.20, "agreement": 0.20, "contract": 0.20, "q4": 0.25, "2025": 0.25} {
		if got := share(w); math.Abs(got-want) > 0.02 {
			t.Errorf("%q in %.3f of documents, want %.2f", w, got, want)
		}
	}
	for _, w := range Common[:10] {
		if got := share(w); got < 0.005 || got > 0.015 {
			t.Errorf("common word %q in %.4f of documents, want ~0.01", w, got)
		}
	}
	if got := float64(shared) / n; math.Abs(got-ShareShare) > 0.01 {
		t.Errorf("%.3f of documents shared, want %.2f", got, ShareShare)
	}
	// One user sees ~0.11 % of the corpus (owner of 0.1 %, grantee of
	// 0.01 %): the required-mode figures' caller.
	if len(sees) != Creators {
		t.Errorf("%d distinct readers, want %d", len(sees), Creators)
	}
	var most int
	for _, c := range sees {
		most = max(most, c)
	}
	if avg := float64(n) * (1 + ShareShare) / Creators; float64(most) > 3*avg {
		t.Errorf("one user sees %d documents, the average %.0f", most, avg)
	}
	var rare float64
	for _, w := range Rare {
		rare += share(w)
	}
	if avg := rare / float64(len(Rare)); math.Abs(avg-0.001) > 0.0002 {
		t.Errorf("rare words in %.5f of documents on average, want ~0.001", avg)
	}
}

// TestInventedWordsAreFarApart checks the true edit distance: any two
// invented words are at least 3 edits apart, so that a fuzzy query (at most
// 2 edits) for one never matches another.
func TestInventedWordsAreFarApart(t *testing.T) {
	all := append(append([]string{}, Common...), Rare...)
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			if d := levenshtein(all[i], all[j]); d < 3 {
				t.Fatalf("%s and %s are %d edits apart", all[i], all[j], d)
			}
		}
	}
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
