package webhooks_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/testenv"
	"github.com/docstream/docstream/internal/webhooks"
)

// A target serves its API before its fan-out has read (and on a new
// deployment, created) the cursor. An endpoint created in that moment, and
// a change committed after it, must still be delivered: the endpoint's
// creation starts the cursor. Before, the fan-out started the cursor at
// the WAL position it found when it got to run, after the change, and the
// change was never delivered (seen under load as a webhook e2e test
// waiting a minute for a delivery that never came).
func TestAnEndpointCreatedBeforeTheFanOutStartsGetsWhatFollowsIt(t *testing.T) {
	e := newEnv(t, nil)
	pool, err := pgxpool.New(context.Background(), e.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := webhooks.New(webhooks.NewStore(pool), e.bus, e.cfg, testLog())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler(nil))
	t.Cleanup(srv.Close)
	rc := newReceiver(t, nil)
	tg := &target{s: s, pool: pool, api: srv.URL}
	tg.createEndpoint(t, rc.URL, []string{api.WebhookDocumentCreated})
	id := e.insert(t, "Made before the fan-out ran")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhooks target: %v", err)
		}
	})
	testenv.WaitFor(t, "the document.created delivery", func() bool {
		return slices.Contains(docIDs(rc.accepted()), id)
	})
}
