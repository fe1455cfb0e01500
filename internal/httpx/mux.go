package httpx

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/docstream/docstream/apperr"
)

// probeMethods are the methods Unmatched asks mux about to build Allow.
var probeMethods = []string{
	http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodOptions,
	http.MethodPatch, http.MethodPost, http.MethodPut,
}

// Unmatched answers what mux's own routes do not, in the one error shape:
// 404 not_found for an unknown path, 405 method_not_allowed with an Allow
// header for a known path asked with another method. Register it on mux as
// "/" (Routes does); ServeMux's own answers would be plain text.
//
// A catch-all "/" would hide ServeMux's 405, so the methods the path does
// accept are found by asking mux about each; that costs only unmatched
// requests, never a routed one.
func Unmatched(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fallback := r.Pattern
		// Metrics label the request "unmatched", as ServeMux's own 404 is.
		r.Pattern = ""
		var allow []string
		probe := *r
		for _, m := range probeMethods {
			probe.Method = m
			if _, p := mux.Handler(&probe); p != "" && p != fallback {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			RespondErr(w, r, nil, apperr.E(apperr.NotFound, "no route for %s", r.URL.Path))
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		RespondErr(w, r, nil, apperr.E(apperr.MethodNotAllowed, "method %s is not allowed on %s (allowed: %s)",
			r.Method, r.URL.Path, strings.Join(allow, ", ")))
	})
}

// ServeContent is http.ServeContent (Range, conditional requests, HEAD)
// whose error answers (416, 412, a failed seek) come in the one error
// shape instead of the standard library's plain text.
func ServeContent(w http.ResponseWriter, r *http.Request, modtime time.Time, content io.ReadSeeker) {
	JSONErrors(w, r, func(w http.ResponseWriter) { http.ServeContent(w, r, "", modtime, content) })
}

// JSONErrors runs serve, code that answers its errors the standard
// library's way (http.Error: plain text), and turns an error answer
// (status ≥ 400) into the one error shape: the code is the one whose
// status it is (apperr.FromHTTP), the message the text serve wrote.
// Anything else serve does (a 2xx, a 304, a hijacked connection) passes
// through untouched.
func JSONErrors(w http.ResponseWriter, r *http.Request, serve func(http.ResponseWriter)) {
	ew := &errorWriter{ResponseWriter: w}
	serve(ew)
	if ew.status == 0 {
		return
	}
	// Headers meant for the content would describe the error body.
	w.Header().Del("Content-Length")
	w.Header().Del("Content-Encoding")
	w.Header().Del("Content-Disposition")
	msg := strings.TrimSpace(ew.msg.String())
	if msg == "" {
		msg = strings.ToLower(http.StatusText(ew.status))
	}
	RespondErr(w, r, nil, &apperr.Error{Code: apperr.FromHTTP(ew.status), Message: msg})
}

// errorWriter holds back an error status and its plain-text body so that
// the caller can answer in JSON instead; anything below 400 passes through.
type errorWriter struct {
	http.ResponseWriter
	status int
	msg    bytes.Buffer
}

func (w *errorWriter) WriteHeader(code int) {
	if code >= 400 {
		w.status = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *errorWriter) Write(b []byte) (int, error) {
	if w.status != 0 {
		if w.msg.Len() < 1<<10 {
			w.msg.Write(b)
		}
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *errorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
