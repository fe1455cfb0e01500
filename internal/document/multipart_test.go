package document

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/docstream/docstream/apperr"
)

// form builds a multipart body from ordered fields; "file" entries are files.
func form(t *testing.T, fields [][2]string, fileCT string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if f[0] == "file" {
			h := make(map[string][]string)
			h["Content-Disposition"] = []string{`form-data; name="file"; filename="upload.bin"`}
			if fileCT != "" {
				h["Content-Type"] = []string{fileCT}
			}
			w, err := mw.CreatePart(h)
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte(f[1]))
			continue
		}
		mw.WriteField(f[0], f[1])
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func (e *env) upload(t *testing.T, body io.Reader, ct string, out any) *http.Response {
	t.Helper()
	resp, err := http.Post(e.srv.URL+"/documents", ct, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		raw, _ := io.ReadAll(resp.Body)
		if err := jsonUnmarshal(raw, out); err != nil {
			t.Fatalf("%d %q: %v", resp.StatusCode, raw, err)
		}
	}
	return resp
}

func TestMultipartUploadStreamsAndDetectsType(t *testing.T) {
	e := newEnv(t)
	pdf := "%PDF-1.7\n" + strings.Repeat("binary stuff ", 100000) // ~1.3 MB
	cases := []struct {
		name   string
		fields [][2]string
		fileCT string
		wantCT string
	}{
		{"fields before the file, type sniffed", [][2]string{{"title", "Contract"}, {"created_by", "a@b.co"}, {"file", pdf}}, "", "application/pdf"},
		{"fields after the file", [][2]string{{"file", pdf}, {"title", "Contract"}, {"created_by", "a@b.co"}}, "application/octet-stream", "application/pdf"},
		{"part content type kept", [][2]string{{"title", "Notes"}, {"created_by", "a@b.co"}, {"file", "# hi"}}, "text/markdown", "text/markdown"},
		{"explicit content_type field wins", [][2]string{{"title", "Notes"}, {"created_by", "a@b.co"}, {"content_type", "text/csv"}, {"file", "a,b"}}, "text/plain", "text/csv"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, ct := form(t, c.fields, c.fileCT)
			var d Document
			resp := e.upload(t, body, ct, &d)
			if resp.StatusCode != 201 {
				t.Fatalf("status %d %+v", resp.StatusCode, d)
			}
			var file string
			for _, f := range c.fields {
				if f[0] == "file" {
					file = f[1]
				}
			}
			sum := sha256.Sum256([]byte(file))
			if d.ContentType != c.wantCT || d.ContentSize != int64(len(file)) || d.ContentSHA256 != hex.EncodeToString(sum[:]) || d.Title == "" {
				t.Fatalf("got %s %d %s %q", d.ContentType, d.ContentSize, d.ContentSHA256, d.Title)
			}
			r, err := e.bucket.NewReader(context.Background(), d.S3Key, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			stored, _ := io.ReadAll(r)
			if string(stored) != file {
				t.Fatal("stored bytes differ from the upload")
			}
		})
	}
}

func TestMultipartFailuresLeaveNothingBehind(t *testing.T) {
	e := newEnvWith(t, testDB(t), withMaxUpload(1<<20))
	big := strings.Repeat("z", 1<<20+1)
	cases := []struct {
		name   string
		fields [][2]string
		status int
		field  string
	}{
		{"no file is 422", [][2]string{{"title", "T"}, {"created_by", "a@b.co"}}, 422, "file"},
		{"a bad email after the file is 422", [][2]string{{"file", "x"}, {"title", "T"}, {"created_by", "nope"}}, 422, "created_by"},
		{"no title is 422", [][2]string{{"created_by", "a@b.co"}, {"file", "x"}}, 422, "title"},
		{"a file over the limit is 413", [][2]string{{"title", "T"}, {"created_by", "a@b.co"}, {"file", big}}, 413, ""},
		{"two files are 422", [][2]string{{"title", "T"}, {"created_by", "a@b.co"}, {"file", "a"}, {"file", "b"}}, 422, "file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, ct := form(t, c.fields, "")
			var er apperr.Body
			resp := e.upload(t, body, ct, &er)
			if resp.StatusCode != c.status {
				t.Fatalf("got %d %+v; want %d", resp.StatusCode, er.Error, c.status)
			}
			if c.field != "" && (len(er.Error.Details) == 0 || er.Error.Details[0].Field != c.field) {
				t.Fatalf("details %+v; want %s", er.Error.Details, c.field)
			}
		})
	}
	if resp := e.upload(t, strings.NewReader("garbage"), "multipart/form-data; boundary=xyz", nil); resp.StatusCode != 400 {
		t.Fatalf("garbage multipart: %d", resp.StatusCode)
	}
	assertNoBlobs(t, e)
	var n int
	_ = e.pool.QueryRow(context.Background(), "SELECT count(*) FROM documents.documents").Scan(&n)
	if n != 0 {
		t.Fatalf("%d rows after failed uploads", n)
	}
}
