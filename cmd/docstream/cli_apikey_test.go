package main

import (
	"net/http"
	"strings"
	"testing"
)

const testKeyID = "5f0c3e9a1b2d4c6e"
const testKeyJSON = `{"id":"` + testKeyID + `","name":"ci","scopes":["read","write"],"created_by":"user:root","created_at":"2025-11-20T01:46:31Z","expires_at":null,"last_used_at":null,"revoked_at":null}`
const testKey = "dsk_" + testKeyID + "_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst"

func TestAPIKeyCommandsCallTheirEndpoints(t *testing.T) {
	srv, seen := fakeGateway(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /apikeys":        answer(201, strings.TrimSuffix(testKeyJSON, "}")+`,"key":"`+testKey+`"}`),
		"GET /apikeys":         answer(200, `{"api_keys":[`+testKeyJSON+`]}`),
		"DELETE /apikeys/{id}": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
	})
	cases := []struct {
		args         []string
		method, path string
		body         string
		out          []string
	}{
		{[]string{"apikey", "create", "--name", "ci", "--scope", "read,write", "--expires-in", "90d"}, "POST", "/apikeys",
			`{"name":"ci","scopes":["read","write"],"expires_in":"90d"}`, []string{testKey, "only time the key is shown"}},
		{[]string{"apikey", "list"}, "GET", "/apikeys", "", []string{testKeyID, "read,write", "never"}},
		{[]string{"apikey", "revoke", testKeyID}, "DELETE", "/apikeys/" + testKeyID, "", []string{"revoked " + testKeyID}},
		// A whole key pasted for its id: only the id travels.
		{[]string{"apikey", "revoke", testKey}, "DELETE", "/apikeys/" + testKeyID, "", []string{"revoked " + testKeyID}},
	}
	for i, c := range cases {
		out, _, err := cli(t, srv.URL, c.args...)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		r := seen()[i]
		if r.Method != c.method || r.Path != c.path || string(r.Body) != c.body {
			t.Fatalf("%v sent %s %s %q", c.args, r.Method, r.Path, r.Body)
		}
		for _, want := range c.out {
			if !strings.Contains(out, want) {
				t.Fatalf("%v: output lacks %q:\n%s", c.args, want, out)
			}
		}
	}
}
