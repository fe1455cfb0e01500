package testenv

import (
	"io"
	"net/http"
)

// Form is a multipart form as a fake server received it.
type Form struct {
	ContentLength int64             // of the request: -1 when streamed
	Names         []string          // every part's name, in order
	Fields        map[string]string // the parts other than "file"
	FileName      string            // of the "file" part
	FileType      string            // its Content-Type
	File          []byte
}

// ReadForm reads r's multipart form part by part, as the document service
// does.
func ReadForm(r *http.Request) (Form, error) {
	f := Form{ContentLength: r.ContentLength, Fields: map[string]string{}}
	mr, err := r.MultipartReader()
	if err != nil {
		return f, err
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return f, nil
		}
		if err != nil {
			return f, err
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return f, err
		}
		f.Names = append(f.Names, p.FormName())
		if p.FormName() == "file" {
			f.FileName, f.FileType, f.File = p.FileName(), p.Header.Get("Content-Type"), b
			continue
		}
		f.Fields[p.FormName()] = string(b)
	}
}
