package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestBenchReportsJSON runs `docstream bench search` for a bounded number
// of requests against a fake search service and reads its -o json report.
func TestBenchReportsJSON(t *testing.T) {
	srv, _ := fakeGateway(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /search": answer(200, `{"total":0,"documents":[]}`),
	})
	out, stderr, err := cli(t, "", "bench", "search", "--server", srv.URL, "--connections", "2", "--requests", "25", "--warmup", "0", "-o", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var rep struct {
		Scenario  string `json:"scenario"`
		OK        int64  `json:"ok"`
		Users     int    `json:"users"`
		Endpoints []struct {
			Name    string             `json:"name"`
			Latency map[string]float64 `json:"latency_ms"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if rep.Scenario != "search" || rep.OK < 25 || rep.Users != 2 || len(rep.Endpoints) != 1 || rep.Endpoints[0].Name != "GET /search" || rep.Endpoints[0].Latency["p99"] <= 0 {
		t.Fatalf("report %s", out)
	}
	if _, _, err := cli(t, "", "bench", "nope", "--requests", "1"); err == nil || !strings.Contains(err.Error(), "reference-mix") {
		t.Fatalf("unknown scenario: %v", err)
	}
	if _, _, err := cli(t, "", "bench", "load"); err == nil || !strings.Contains(err.Error(), "--documents") {
		t.Fatalf("load without --documents: %v", err)
	}
}

// TestBenchSendsTheToken: a system in required mode answers 401 to a run
// without a credential, so bench sends --token on every request, the
// setup's list included.
func TestBenchSendsTheToken(t *testing.T) {
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf(`{"id":"6f1c2a8e-1111-4c1d-9a43-%012d"}`, i)
	}
	requireToken := func(body string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer bench-token" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(body))
		}
	}
	srv, _ := fakeGateway(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /documents":      requireToken("[" + strings.Join(ids, ",") + "]"),
		"GET /documents/{id}": requireToken(ids[0]),
	})
	args := []string{"bench", "get", "--server", srv.URL, "--connections", "1", "--requests", "10", "--warmup", "0", "-o", "json"}
	if _, _, err := cli(t, "", args...); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("without a token the setup's list must fail with 401: %v", err)
	}
	out, stderr, err := cli(t, "", append(args, "--token", "bench-token")...)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var rep struct {
		OK     int64            `json:"ok"`
		Errors map[string]int64 `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if rep.OK < 10 || len(rep.Errors) != 0 {
		t.Fatalf("with --token: %s", out)
	}
}
