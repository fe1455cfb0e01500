package main

import (
	"encoding/json"
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
