package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Floor is the floor of the get scenario: a bare net/http handler that
// answers GET /documents/{id} with the bytes the document service answered
// for that id, and GET /documents with its first page, from memory. Run
// the get scenario against it and against the service in the same minutes:
// the service's share of the floor is what its work costs beyond HTTP.
//
// It copies the first 1,000 documents of documentURL (a list and one GET
// each) when it is made. A POST /documents answers a copy of the first,
// creating nothing.
func Floor(ctx context.Context, client *http.Client, documentURL, token string) (http.Handler, error) {
	fetch := func(url string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return b, err
	}
	list, err := fetch(documentURL + "/documents?limit=1000")
	if err != nil {
		return nil, fmt.Errorf("bench floor: %w", err)
	}
	var docs []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(list, &docs); err != nil {
		return nil, fmt.Errorf("bench floor: list documents: %w", err)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("bench floor: %s has no documents to copy (run the get scenario against it once, or bench load)", documentURL)
	}
	bodies := make(map[string][]byte, len(docs))
	for _, d := range docs {
		if bodies[d.ID], err = fetch(documentURL + "/documents/" + d.ID); err != nil {
			return nil, fmt.Errorf("bench floor: %w", err)
		}
	}
	first := bodies[docs[0].ID]
	mux := http.NewServeMux()
	// The get scenario creates documents until it has 100 ids to read; a
	// create here answers a copy, so the same ids are read again.
	mux.HandleFunc("POST /documents", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(first)
	})
	mux.HandleFunc("GET /documents", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(list)
	})
	mux.HandleFunc("GET /documents/{id}", func(w http.ResponseWriter, r *http.Request) {
		b, ok := bodies[r.PathValue("id")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	return mux, nil
}
