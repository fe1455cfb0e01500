package testenv

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/docstream/docstream/api"
)

// Do sends a request to url and fails the test if it cannot. body is nil,
// a raw string or []byte, or any other value sent as JSON; a body is sent
// as application/json unless header (name, value pairs) says otherwise.
// When out is not nil the response must be JSON and is decoded into it.
// The returned response's Body holds the whole body again, so that a test
// may read it or ignore it without leaking the connection.
func Do(t testing.TB, method, url string, body, out any, header ...string) *http.Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %d: reading the body: %v", method, url, resp.StatusCode, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d: decode %q: %v", method, url, resp.StatusCode, raw, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return resp
}

// JSONFields lists the JSON names of a struct's fields, sorted; tests use
// it to check that a server's request type reads exactly the fields the
// public api type sends.
func JSONFields(v any) []string {
	t := reflect.TypeOf(v)
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// CDCRole is what a CDC engine's readiness (GET base/health/ready) says
// of it: "active", "standby", or "" while it is neither or does not
// answer.
func CDCRole(base string) string {
	resp, err := http.Get(base + "/health/ready")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var h api.Health
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&h) != nil {
		return ""
	}
	switch r := h.Checks["role"]; {
	case r.Status == "ok":
		return "active"
	case strings.Contains(r.Error, "standby"):
		return "standby"
	}
	return ""
}

// WriteJSON writes v as JSON to path.
func WriteJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
