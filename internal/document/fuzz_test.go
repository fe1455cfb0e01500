package document

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/httpx"
)

// FuzzCreateRequestDecoder feeds arbitrary bodies to the create decoder and
// validation: whatever comes in, the outcome is a valid input or a client
// error (4xx) with a message — never a panic, never a 5xx.
func FuzzCreateRequestDecoder(f *testing.F) {
	for _, seed := range []string{
		`{"title":"T","content":"c","created_by":"a@b.co"}`,
		`{"title":"T","content":"c","created_by":"a@b.co","content_type":"text/plain"}`,
		`{"title":5}`, `[]`, `null`, `{`, `{"title":"\u0000"}`, `{"owner":1}`, `{} {}`,
		`{"title":"` + strings.Repeat("é", 300) + `","content":"","created_by":"x@y.z"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/documents", strings.NewReader(body))
		req, err := httpx.Decode[createRequest](w, r, 1<<16)
		if err == nil {
			in := CreateInput{Title: deref(req.Title), CreatedBy: deref(req.CreatedBy), ContentType: deref(req.ContentType)}
			err = in.Validate()
			if err == nil {
				return
			}
		}
		e := apperr.As(err)
		if st := apperr.HTTPStatus(e.Code); st < 400 || st >= 500 || e.Message == "" {
			t.Fatalf("body %q: error %v maps to %d", body, err, st)
		}
	})
}
