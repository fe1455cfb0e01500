package app

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// The document service serves /apikeys beside /documents: open in
// `docstream dev`, an admin's outside it (anonymous: 401); a key made
// there is verified by the process's one verifier, and refused by it as
// soon as it is revoked.
func TestTheDocumentServiceServesAPIKeys(t *testing.T) {
	for _, dev := range []bool{false, true} {
		c := testConfig(t)
		c.Targets = "document"
		c.Shared.Dev = dev
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan *System, 1)
		done := make(chan error, 1)
		go func() { done <- Run(ctx, c, logging.Discard(), func(s *System) { ready <- s }) }()
		var sys *System
		select {
		case sys = <-ready:
		case err := <-done:
			cancel()
			t.Fatalf("start: %v", err)
		}
		base := "http://" + c.Document.Addr
		var k api.CreatedAPIKey
		resp := testenv.Do(t, http.MethodPost, base+"/apikeys", api.CreateAPIKeyRequest{Name: "ci", Scopes: []string{"read"}}, nil)
		switch {
		case !dev:
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("serve, anonymous POST /apikeys: %d, want 401", resp.StatusCode)
			}
		case resp.StatusCode != http.StatusCreated:
			t.Errorf("dev, anonymous POST /apikeys: %d, want 201", resp.StatusCode)
		default:
			testenv.Do(t, http.MethodPost, base+"/apikeys", api.CreateAPIKeyRequest{Name: "ci", Scopes: []string{"read"}}, &k)
			keys := sys.keys
			p, err := keys.VerifyKey(ctx, k.Key)
			if err != nil || p.Kind != auth.KindAPIKey || p.Subject != k.ID {
				t.Errorf("the process's verifier: %+v %v", p, err)
			}
			if resp := testenv.Do(t, http.MethodDelete, base+"/apikeys/"+k.ID, nil, nil); resp.StatusCode != http.StatusNoContent {
				t.Errorf("revoke: %d", resp.StatusCode)
			}
			if _, err := keys.VerifyKey(ctx, k.Key); err == nil {
				t.Error("the process's verifier accepts a key revoked through it")
			}
		}
		// The documents are still served beside.
		if resp := testenv.Do(t, http.MethodGet, base+"/documents", nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET /documents: %d", resp.StatusCode)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// In required mode an API key is a credential every route of the process
// accepts, capped by its scopes: a read key lists documents but may not
// create one, and once revoked it is refused (401) at once by the process
// that revoked it.
func TestAnAPIKeyIsACredentialCappedByItsScopes(t *testing.T) {
	c := testConfig(t)
	c.Targets = "document"
	c.Auth.Mode = string(auth.ModeRequired)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *System, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, logging.Discard(), func(s *System) { ready <- s }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("start: %v", err)
	}
	base := "http://" + c.Document.Addr
	admin, _, err := auth.Mint(c.Auth, auth.TokenRequest{Subject: "root", Admin: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var k api.CreatedAPIKey
	if resp := testenv.Do(t, http.MethodPost, base+"/apikeys", api.CreateAPIKeyRequest{Name: "reader", Scopes: []string{"read"}}, &k,
		"Authorization", "Bearer "+admin); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	key := []string{"Authorization", "Bearer " + k.Key}
	if resp := testenv.Do(t, http.MethodGet, base+"/documents", nil, nil, key...); resp.StatusCode != http.StatusOK {
		t.Errorf("a read key lists documents: %d", resp.StatusCode)
	}
	if resp := testenv.Do(t, http.MethodPost, base+"/documents", map[string]string{"title": "t", "content": "c", "created_by": "a@b.co"}, nil, key...); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a read key creates a document: %d, want 403", resp.StatusCode)
	}
	if resp := testenv.Do(t, http.MethodGet, base+"/apikeys", nil, nil, key...); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a read key lists API keys: %d, want 403", resp.StatusCode)
	}
	if resp := testenv.Do(t, http.MethodDelete, base+"/apikeys/"+k.ID, nil, nil, "Authorization", "Bearer "+admin); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if resp := testenv.Do(t, http.MethodGet, base+"/documents", nil, nil, key...); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a revoked key lists documents: %d, want 401", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
