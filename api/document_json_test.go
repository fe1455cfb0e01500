package api_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
)

// hostileStrings are what encoding/json escapes: HTML, control
// characters, quotes, invalid UTF-8, the JavaScript line separators.
var hostileStrings = []string{"", "plain", `<script>&"'\`, "a\x00b\x01\x1f\x7f", "\b\f\n\r\t", "\xff\xfe ok \xc3",
	"\u2028\u2029", "日本語 ✓ 😀", "é\u00e9\u0301", "end\\"}

// encodingJSON is what the list wrote before AppendDocumentsJSON:
// json.Encoder's Encode of the slice, without the trailing newline.
func encodingJSON(t testing.TB, docs []*api.Document) []byte {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(docs); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestDocumentAppendJSONIsEncodingJSON(t *testing.T) {
	var docs []*api.Document
	times := []time.Time{{}, created, signed.In(time.FixedZone("x", -7*3600-1800)), time.Date(1, 1, 1, 0, 0, 0, 999, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-44, 3, 15, 12, 0, 0, 0, time.UTC)}
	for i, s := range hostileStrings {
		docs = append(docs, &api.Document{ID: docID, Title: s, ContentType: s, ContentSize: int64(i) * -987654321, S3Key: s,
			Status: api.Status(s), CreatedBy: s, CreatedAt: api.Time{Time: times[i%len(times)]},
			UpdatedAt: api.Time{Time: times[(i+3)%len(times)]}, Version: int32(i) - 3, ContentSHA256: s, Owner: s,
			SigningStatus: api.RequestState(s)})
	}
	for _, page := range [][]*api.Document{nil, {}, docs[:1], docs, {docs[0], nil, docs[1]}} {
		want := encodingJSON(t, page)
		if page == nil {
			want = []byte("[]") // the list never sends null: its page is never nil
			page = []*api.Document{}
		}
		if got := api.AppendDocumentsJSON(nil, page); !bytes.Equal(got, want) {
			t.Errorf("AppendDocumentsJSON\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzDocumentAppendJSON(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s, s, int64(len(s)), int32(len(s)), int64(1763603191657647))
	}
	f.Fuzz(func(t *testing.T, title, owner string, size int64, version int32, micros int64) {
		at := api.Time{Time: time.UnixMicro(micros)}
		d := &api.Document{ID: docID, Title: title, ContentType: "text/plain", ContentSize: size, S3Key: title,
			Status: api.StatusCreated, CreatedBy: owner, CreatedAt: at, UpdatedAt: api.Time{Time: at.Add(time.Duration(size))},
			Version: version, ContentSHA256: title, Owner: owner, SigningStatus: api.RequestState(title)}
		page := []*api.Document{d, d}
		if got, want := api.AppendDocumentsJSON(nil, page), encodingJSON(t, page); !bytes.Equal(got, want) {
			t.Errorf("AppendDocumentsJSON\n got %s\nwant %s", got, want)
		}
	})
}
