package webhooks_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/bus"
	"github.com/docstream/docstream/internal/testenv"
)

// No secret sits on the bus: the CDC publication the engine created
// captures no table of the webhooks schema, nor API keys or invitations,
// and after an endpoint is created and its secret rotated while a change
// is delivered, neither secret is in any message on the change stream.
func TestNoSecretIsOnTheChangeStream(t *testing.T) {
	e := newEnv(t, nil)
	tg := e.start(t, nil)
	rows, err := e.Pool.Query(context.Background(), `SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = 'docstream_pub'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, s)
	}
	if rows.Err() != nil || len(tables) == 0 {
		t.Fatalf("publication tables %v: %v", tables, rows.Err())
	}
	for _, tb := range tables {
		if strings.HasPrefix(tb, "webhooks.") || tb == "auth.api_keys" || tb == "signing.invitations" {
			t.Errorf("the publication captures %s", tb)
		}
	}

	var mu sync.Mutex
	var all []byte
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.bus.Broadcast(ctx, bus.Topics(bus.TopicDocuments, bus.TopicSignatures), bus.Start{Kind: bus.StartBeginning}, func(_ context.Context, ms []bus.Message) error {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range ms {
				all = append(all, m.Value...)
				all = append(all, m.Key...)
			}
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	rc := newReceiver(t, nil)
	ep := tg.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated})
	var rot api.CreatedWebhook
	testenv.Do(t, "POST", tg.api+"/webhooks/"+ep.ID+"/rotate", api.RotateWebhookRequest{Overlap: "1h"}, &rot)
	id := e.insert(t, "after the secrets")
	testenv.WaitFor(t, "the delivery", func() bool { return len(rc.accepted()) == 1 })
	testenv.WaitFor(t, "the change on the stream", func() bool { mu.Lock(); defer mu.Unlock(); return strings.Contains(string(all), id) })
	mu.Lock()
	defer mu.Unlock()
	for _, s := range []string{ep.Secret, rot.Secret, strings.TrimPrefix(ep.Secret, "whsec_"), strings.TrimPrefix(rot.Secret, "whsec_"), ep.ID} {
		if s != "" && strings.Contains(string(all), s) {
			t.Errorf("%.12s… is on the change stream", s)
		}
	}
}
