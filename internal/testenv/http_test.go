package testenv

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestDoSendsJSONOrRawAndDecodesTheReply(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"method": r.Method, "type": r.Header.Get("Content-Type"), "body": string(b), "x": r.Header.Get("X-Test")})
	}))
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		name     string
		body     any
		header   []string
		wantType string
		wantBody string
	}{
		{"no body", nil, nil, "", ""},
		{"a value as JSON", map[string]int{"a": 1}, nil, "application/json", `{"a":1}`},
		{"a raw string", "a=1", []string{"Content-Type", "application/x-www-form-urlencoded"}, "application/x-www-form-urlencoded", "a=1"},
		{"raw bytes", []byte("{}"), []string{"X-Test", "yes"}, "application/json", "{}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got map[string]string
			resp := Do(t, "POST", srv.URL+"/x", c.body, &got, c.header...)
			if resp.StatusCode != 200 || got["method"] != "POST" || got["type"] != c.wantType || got["body"] != c.wantBody {
				t.Fatalf("%d %v; want type %q body %q", resp.StatusCode, got, c.wantType, c.wantBody)
			}
			if len(c.header) == 2 && c.header[0] == "X-Test" && got["x"] != "yes" {
				t.Fatalf("header not sent: %v", got)
			}
			// The body can still be read after Do decoded it.
			raw, _ := io.ReadAll(resp.Body)
			var again map[string]string
			if err := json.Unmarshal(raw, &again); err != nil || again["body"] != c.wantBody {
				t.Fatalf("body re-read: %q, %v", raw, err)
			}
		})
	}
}
