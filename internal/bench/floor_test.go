package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The floor serves, from memory, the very bytes the service answered for
// each document, and the get scenario runs against it as against the
// service.
func TestTheFloorServesTheServicesOwnAnswersAndCarriesTheGetScenario(t *testing.T) {
	docs := map[string]string{"a": `{"id":"a","title":"A"}` + "\n", "b": `{"id":"b","title":"B"}` + "\n"}
	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/documents" {
			_, _ = io.WriteString(w, `[{"id":"a"},{"id":"b"}]`)
			return
		}
		b, ok := docs[r.URL.Path[len("/documents/"):]]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, b)
	}))
	defer service.Close()
	h, err := Floor(context.Background(), http.DefaultClient, service.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	service.Close() // everything the floor answers is in its memory now
	floor := httptest.NewServer(h)
	defer floor.Close()
	for id, want := range docs {
		resp, err := http.Get(floor.URL + "/documents/" + id)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(got) != want || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("floor GET %s: %d %q; want the service's bytes %q", id, resp.StatusCode, got, want)
		}
	}
	rep, err := Run(context.Background(), Options{DocumentURL: floor.URL, Scenario: "get", Users: 2, Requests: 50, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK < 50 || len(rep.Errors) != 0 {
		t.Fatalf("get against the floor: %d ok, errors %v", rep.OK, rep.Errors)
	}
}
