package signature

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCreateSignature measures POST /signatures end to end over HTTP:
// validation, DocumentExists and UpdateDocumentStatus over gRPC against the
// real document service, the object write (file bucket), and the one-statement
// insert of signature + outbox row into PostgreSQL, then the outbox delete.
// Clients run in parallel (GOMAXPROCS × 4 goroutines) over 200 documents, so
// after the first round the status update is the document service's
// "already signed" no-op. Reports requests/s and p50/p99 latency.
func BenchmarkCreateSignature(b *testing.B) {
	e := newEnv(b)
	sig := e.startSignature(b, testOptions{})
	docs := make([]string, 200)
	for i := range docs {
		docs[i] = e.createDocument(b, fmt.Sprint("Bench ", i), "The terms of the agreement").ID
	}
	bodies := make([][]byte, len(docs))
	for i, id := range docs {
		bodies[i], _ = json.Marshal(map[string]any{
			"document_id": id, "signer_email": "signer@client.com", "signer_name": "Bench Signer",
			"signature_data": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
		})
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var (
		next atomic.Int64
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, b.N)
	)
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 256)
		for pb.Next() {
			body := bodies[int(next.Add(1))%len(bodies)]
			t0 := time.Now()
			resp, err := client.Post(sig.url+"/signatures", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99_ms")
}
