package extractor_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/apikey"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/extractor"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// The bulk routes (re-run every extraction, count the queue) are an
// administrative operation: outside `docstream dev` they need a principal
// that may administer — in open mode as in required mode — and an API key
// counts as an admin only with the admin scope. Before, open mode let
// anyone (anonymous included) re-run every extraction, and the check read
// the admin flag rather than auth.Principal.MayAdminister.
func TestExtractorBulkRoutesNeedAnAdministrator(t *testing.T) {
	ctx := context.Background()
	log := logging.Discard()
	e := newAccessEnv(t)
	pool := e.pool
	kcfg := apikey.DefaultConfig()
	kcfg.AdminOpen = true // only to mint the keys below
	kstore := apikey.NewStore(pool)
	keys := apikey.NewVerifier(kstore, kcfg, log)
	mint := func(scopes ...string) string {
		_, raw, err := apikey.NewService(kstore, keys, kcfg, log).Create(ctx, apikey.CreateInput{Name: strings.Join(scopes, "+"), Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	readWrite, adminKey := mint("read", "write", "sign"), mint("read", "admin")

	for _, mode := range []auth.Mode{auth.ModeOpen, auth.ModeRequired} {
		acfg := auth.DefaultConfig()
		acfg.Mode = string(mode)
		acfg.JWTSecret = strings.Repeat("0123456789", 4)
		authn, err := auth.New(ctx, acfg, keys)
		if err != nil {
			t.Fatal(err)
		}
		tok := func(sub string, admin bool) string {
			raw, _, err := auth.Mint(acfg, auth.TokenRequest{Subject: sub, Email: sub + "@company.com", EmailVerified: true, Admin: admin, TTL: time.Hour}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}
		xcfg := extractor.DefaultConfig()
		xcfg.Auth = authn
		ext := httptest.NewServer(extractor.New(e.store, e.bus, e.bucket, xcfg, log).Handler(nil))
		t.Cleanup(ext.Close)
		for _, c := range []struct {
			who, cred string
			want      int
		}{
			{"anonymous", "", http.StatusUnauthorized},
			{"a user", tok("alice", false), http.StatusForbidden},
			{"an API key without the admin scope", readWrite, http.StatusForbidden},
			{"an admin", tok("root", true), http.StatusOK},
			{"an API key with the admin scope", adminKey, http.StatusOK},
		} {
			for _, r := range []struct {
				method, path string
				body         any
			}{{"POST", "/extractions/rerun", api.ExtractRequest{Failed: true}}, {"GET", "/extractions/queue", nil}} {
				t.Run(string(mode)+"/"+c.who+" "+r.method+" "+r.path, func(t *testing.T) {
					var h []string
					if c.cred != "" {
						h = []string{"Authorization", "Bearer " + c.cred}
					}
					resp := testenv.Do(t, r.method, ext.URL+r.path, r.body, nil, h...)
					resp.Body.Close()
					if resp.StatusCode != c.want {
						t.Fatalf("%d, want %d", resp.StatusCode, c.want)
					}
				})
			}
		}
	}
}
