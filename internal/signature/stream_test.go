package signature

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/client"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/cdc/cdctest"
	"github.com/docstream/docstream/internal/realtime"
)

// TestSigningTransitionsReachAWebSocketWatcherInOrder drives the real
// workflow (signature service, scheduler, mail through a local SMTP sink)
// with the CDC engine and a realtime service on the same database: a
// watcher of the document, subscribed before the request exists, gets
// every transition of the request and of its two sequential signers live,
// in commit order, interleaved with the document's own status changes; a
// second watcher resuming with ?since= from the first message gets the
// same sequence after it. No message holds an invitation token, a
// recipient's IP address or user agent.
func TestSigningTransitionsReachAWebSocketWatcherInOrder(t *testing.T) {
	e := newEnv(t)
	p := cdctest.Attach(t, e.dbURL)
	p.StartEngine(t, p.Config(), p.Bus)
	ctx, cancel := context.WithCancel(context.Background())
	opts := realtime.DefaultConfig().Hub
	opts.Bus = p.Bus
	hub := realtime.NewHub(opts)
	done := make(chan struct{})
	go func() { defer close(done); _ = hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	ac := auth.DefaultConfig()
	ac.Mode = string(auth.ModeOpen)
	authn, err := auth.New(ctx, ac, nil)
	if err != nil {
		t.Fatal(err)
	}
	rt := httptest.NewServer(realtime.NewServer(hub, authn, realtime.ServerConfig{}))
	t.Cleanup(rt.Close)
	deadline := time.Now().Add(time.Minute)
	for hub.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("realtime consumer not ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cl, err := client.New(rt.URL)
	if err != nil {
		t.Fatal(err)
	}

	mp := startMailpit(t)
	in := e.startWorkflow(t, mp)
	doc := e.createDocument(t, "Lease agreement", "the pinned terms")
	w, err := cl.Watch(ctx, doc.ID, client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var req api.SigningRequest
	if code := in.do(t, "POST", "/documents/"+doc.ID+"/signing-requests", api.CreateSigningRequest{
		Recipients: []api.RecipientInput{
			{Email: "a@example.com", Name: "Alice", Role: api.RoleSigner, Order: 1},
			{Email: "b@example.com", Name: "Bob", Role: api.RoleSigner, Order: 2},
		}}, &req); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	var tokens []string
	act := func(email string) {
		tok := tokenFor(t, mp, email, "Please sign")
		tokens = append(tokens, tok)
		if code := in.do(t, "GET", "/invitations/"+tok, nil, nil); code != http.StatusOK {
			t.Fatalf("%s views: %d", email, code)
		}
		if code := in.do(t, "POST", "/invitations/"+tok+"/sign", api.InvitationAction{Consent: true, SignatureData: pngSignature(t)}, nil,
			"User-Agent", "SecretBrowser/1.0"); code != http.StatusOK {
			t.Fatalf("%s signs: %d", email, code)
		}
	}
	act("a@example.com")
	act("b@example.com")

	// The workflow's transitions, in the order they commit (a view that
	// is the request's first moves it to in_progress in the same
	// transaction, after the recipient; the last signature completes it).
	want := []string{
		"signing_request.created", "signing_request.sent",
		"recipient.notified a@example.com", "recipient.viewed a@example.com", "signing_request.in_progress", "recipient.signed a@example.com",
		"recipient.notified b@example.com", "recipient.viewed b@example.com", "recipient.signed b@example.com", "signing_request.completed",
	}
	read := func(w *client.Watch, n int) (got []string, first uint64) {
		t.Helper()
		var last uint64
		rctx, stop := context.WithTimeout(ctx, 2*time.Minute)
		defer stop()
		for len(got) < n {
			m, err := w.Next(rctx)
			if err != nil {
				t.Fatalf("after %v: %v", got, err)
			}
			frame := string(w.Frame())
			for _, secret := range append([]string{"SecretBrowser", "ip_address", "user_agent", "127.0.0.1"}, tokens...) {
				if strings.Contains(frame, secret) {
					t.Fatalf("message %s holds %q", frame, secret)
				}
			}
			if m.LSN < last {
				t.Fatalf("cursor went back: %d after %d", m.LSN, last)
			}
			last = m.LSN
			switch d := m.Data.(type) {
			case api.SigningRequestData:
				if d.RequestID != req.ID || d.DocumentID != doc.ID {
					t.Fatalf("request message for another request: %s", frame)
				}
				got = append(got, m.Type)
			case api.RecipientData:
				if d.RequestID != req.ID || d.DocumentID != doc.ID {
					t.Fatalf("recipient message for another request: %s", frame)
				}
				got = append(got, m.Type+" "+d.Email)
			default:
				continue // the document's own messages, in between
			}
			if first == 0 {
				first = m.LSN
			}
		}
		return got, first
	}
	got, first := read(w, len(want))
	if !slices.Equal(got, want) {
		t.Fatalf("transitions\n got %v\nwant %v", got, want)
	}
	// Resuming after the first transaction (the request created and sent:
	// one commit, one cursor) replays the rest.
	r, err := cl.Watch(ctx, doc.ID, client.WatchOptions{Since: first})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := read(r, len(want)-2); !slices.Equal(got, want[2:]) {
		t.Fatalf("replayed transitions\n got %v\nwant %v", got, want[2:])
	}
}
