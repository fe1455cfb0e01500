package apikey

import (
	"context"
	"crypto/sha256"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/auth"
)

// A key is made, shown once, listed without its secret, used, revoked
// (twice: idempotent) and then refused.
func TestCreateListUseRevoke(t *testing.T) {
	e := newEnv(t, defaultConfig())
	k := e.create(t, "ci uploader", "write", "read", "write")
	if !strings.HasPrefix(k.Key, auth.APIKeyPrefix+k.ID+"_") || len(k.Key) != keyLen {
		t.Fatalf("key %q (id %s) is not dsk_<id>_<secret>", k.Key, k.ID)
	}
	if got, want := k.Scopes, []string{"read", "write"}; !slices.Equal(got, want) {
		t.Fatalf("scopes %v, want %v (deduplicated, canonical order)", got, want)
	}
	if k.CreatedBy != "user:root" || k.ExpiresAt != nil || k.LastUsedAt != nil || k.RevokedAt != nil {
		t.Fatalf("created %+v", k.APIKey)
	}

	// Listed, never with the key or its hash.
	resp := e.do(t, "GET", "/apikeys", nil, nil, e.admin...)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, k.Key) || strings.Contains(body, k.Key[len(k.Key)-secretLen:]) ||
		strings.Contains(body, `"key"`) || strings.Contains(body, "sha256") {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	var list api.APIKeys
	e.do(t, "GET", "/apikeys", nil, &list, e.admin...)
	if len(list.Keys) != 1 || list.Keys[0].ID != k.ID || list.Keys[0].Name != "ci uploader" {
		t.Fatalf("list %+v", list)
	}

	// Used as a bearer credential: the principal it acts as.
	p, err := e.keys.VerifyKey(context.Background(), k.Key)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != auth.KindAPIKey || p.Subject != k.ID || p.Name != "ci uploader" || p.Admin || p.Key() != "apikey:"+k.ID ||
		!p.HasScope(auth.ScopeWrite) || p.HasScope(auth.ScopeSign) || !p.ScopeAllows(auth.LevelEdit) || p.ScopeAllows(auth.LevelSign) {
		t.Fatalf("principal %+v", p)
	}

	if resp := e.do(t, "DELETE", "/apikeys/"+k.ID, nil, nil, e.admin...); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	first := revokedAt(t, e, k.ID)
	if resp := e.do(t, "DELETE", "/apikeys/"+k.ID, nil, nil, e.admin...); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoking twice: %d, want 204 (idempotent)", resp.StatusCode)
	}
	if again := revokedAt(t, e, k.ID); !again.Equal(first) {
		t.Fatalf("revoking twice moved revoked_at from %v to %v", first, again)
	}
	// Refused at once on the instance that revoked it, cache or not.
	if _, err := e.keys.VerifyKey(context.Background(), k.Key); apperr.CodeOf(err) != apperr.Unauthenticated {
		t.Fatalf("revoked key: %v", err)
	}
	resp = e.do(t, "GET", "/apikeys", nil, nil, bearer(k.Key)...)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked key as bearer: %d", resp.StatusCode)
	}

	for path, want := range map[string]int{
		"/apikeys/0123456789abcdef": http.StatusNotFound,   // well-formed, unknown
		"/apikeys/not-a-key-id":     http.StatusBadRequest, // malformed
		"/apikeys/" + k.Key:         http.StatusBadRequest, // a key pasted for its id
	} {
		resp := e.do(t, "DELETE", path, nil, nil, e.admin...)
		if resp.StatusCode != want {
			t.Errorf("DELETE %s: %d, want %d", path, resp.StatusCode, want)
		}
		if strings.Contains(readAll(t, resp), k.Key[len(k.Key)-secretLen:]) {
			t.Errorf("DELETE %s: the answer echoes the secret", path)
		}
	}
}

func revokedAt(t *testing.T, e *env, id string) time.Time {
	t.Helper()
	var at *time.Time
	if err := e.pool.QueryRow(context.Background(), `SELECT revoked_at FROM auth.api_keys WHERE id = $1`, id).Scan(&at); err != nil || at == nil {
		t.Fatalf("revoked_at of %s: %v %v", id, at, err)
	}
	return *at
}

// The row holds the SHA-256 of the key and nothing from which the key
// could be read back.
func TestTheRowHoldsTheHashNotTheSecret(t *testing.T) {
	e := newEnv(t, defaultConfig())
	k := e.create(t, "hash check", "read")
	var sum []byte
	var row string
	if err := e.pool.QueryRow(context.Background(), `SELECT key_sha256, row_to_json(k)::text FROM auth.api_keys k WHERE id = $1`, k.ID).Scan(&sum, &row); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte(k.Key))
	if string(sum) != string(want[:]) {
		t.Fatalf("key_sha256 %x, want sha256(key) %x", sum, want)
	}
	secret := k.Key[len(k.Key)-secretLen:]
	if strings.Contains(row, secret) || strings.Contains(row, k.Key) {
		t.Fatalf("the row holds the secret: %s", row)
	}
}

// A revoked key stops working on the revoking instance at once and on any
// other within CacheTTL, however warm its cache.
func TestARevokedKeyIsRefusedEverywhereWithinTheCacheBound(t *testing.T) {
	cfg := defaultConfig()
	e := newEnv(t, cfg)
	other := e.verifier(cfg) // another instance's verifier
	k := e.create(t, "revoke me", "read")
	ctx := context.Background()
	for _, v := range []*Verifier{e.keys, other} {
		if _, err := v.VerifyKey(ctx, k.Key); err != nil {
			t.Fatal(err)
		}
	}
	if resp := e.do(t, "DELETE", "/apikeys/"+k.ID, nil, nil, e.admin...); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if _, err := e.keys.VerifyKey(ctx, k.Key); apperr.CodeOf(err) != apperr.Unauthenticated {
		t.Fatalf("revoking instance still accepts the key: %v", err)
	}
	// The other instance may serve its cached row until CacheTTL…
	e.clock.advance(cfg.CacheTTL)
	if _, err := other.VerifyKey(ctx, k.Key); apperr.CodeOf(err) != apperr.Unauthenticated {
		t.Fatalf("another instance accepts a key revoked %v ago: %v", cfg.CacheTTL, err)
	}

	// Without a cache, every instance refuses at once.
	nocache := cfg
	nocache.CacheTTL = 0
	third := e.verifier(nocache)
	k2 := e.create(t, "revoke me too", "read")
	if _, err := third.VerifyKey(ctx, k2.Key); err != nil {
		t.Fatal(err)
	}
	e.do(t, "DELETE", "/apikeys/"+k2.ID, nil, nil, e.admin...)
	if _, err := third.VerifyKey(ctx, k2.Key); apperr.CodeOf(err) != apperr.Unauthenticated {
		t.Fatalf("uncached verifier accepts a revoked key: %v", err)
	}
}

func TestAnExpiredKeyIsRefused(t *testing.T) {
	e := newEnv(t, defaultConfig())
	var k api.CreatedAPIKey
	resp := e.do(t, "POST", "/apikeys", api.CreateAPIKeyRequest{Name: "short", Scopes: []string{"read"}, ExpiresIn: "2m"}, &k, e.admin...)
	if resp.StatusCode != http.StatusCreated || k.ExpiresAt == nil {
		t.Fatalf("create: %d %+v", resp.StatusCode, k.APIKey)
	}
	if d := time.Until(*k.ExpiresAt); d < time.Minute || d > 2*time.Minute {
		t.Fatalf("expires in %v, want about 2m", d)
	}
	ctx := context.Background()
	if _, err := e.keys.VerifyKey(ctx, k.Key); err != nil {
		t.Fatalf("fresh key: %v", err)
	}
	// The expiry is handed on (auth.KeyExpiryVerifier), so that a
	// WebSocket opened with the key is closed when it expires.
	if _, exp, err := e.keys.VerifyKeyExpiry(ctx, k.Key); err != nil || exp.Sub(*k.ExpiresAt).Abs() > time.Millisecond { // PostgreSQL keeps microseconds
		t.Fatalf("the key's expiry: %v %v, want %v", exp, err, *k.ExpiresAt)
	}
	e.clock.advance(3 * time.Minute) // the env's clock started before the key was made
	_, err := e.keys.VerifyKey(ctx, k.Key)
	if apperr.CodeOf(err) != apperr.Unauthenticated || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired key: %v", err)
	}
}

// Every malformed, forged or hostile credential is a 401, never a 500,
// and none costs a database round trip it does not need.
func TestHostileKeysAreUnauthenticated(t *testing.T) {
	e := newEnv(t, defaultConfig())
	k := e.create(t, "real", "admin")
	id, secret := k.ID, k.Key[len(k.Key)-secretLen:]
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	for name, raw := range map[string]string{
		"empty":                         "",
		"prefix only":                   auth.APIKeyPrefix,
		"wrong prefix":                  "dsx_" + id + "_" + secret,
		"upper-case prefix":             "DSK_" + id + "_" + secret,
		"truncated":                     k.Key[:len(k.Key)-1],
		"one character more":            k.Key + "a",
		"10 KB long":                    k.Key + strings.Repeat("a", 10<<10),
		"non-ASCII in the secret":       k.Key[:len(k.Key)-2] + "é",
		"non-ASCII in the id":           auth.APIKeyPrefix + "é" + id[2:] + "_" + secret,
		"upper-case id":                 auth.APIKeyPrefix + strings.ToUpper(id) + "_" + secret,
		"no separator":                  auth.APIKeyPrefix + id + "-" + secret,
		"NUL in the secret":             k.Key[:len(k.Key)-1] + "\x00",
		"unknown id, real secret":       auth.APIKeyPrefix + "0123456789abcdef_" + secret,
		"real id, first byte wrong":     auth.APIKeyPrefix + id + "_" + flip(secret, 0),
		"real id, last byte wrong":      auth.APIKeyPrefix + id + "_" + flip(secret, secretLen-1),
		"a JWT-looking string":          "eyJhbGciOiJub25lIn0.e30.",
		"key with whitespace around":    " " + k.Key + " ",
		"SQL in the id":                 auth.APIKeyPrefix + "'; drop table--_" + secret,
		"secret with base32 padding":    k.Key[:len(k.Key)-1] + "=",
		"secret with digits 0, 1, 8, 9": k.Key[:len(k.Key)-4] + "0189",
	} {
		p, err := e.keys.VerifyKey(context.Background(), raw)
		if apperr.CodeOf(err) != apperr.Unauthenticated {
			t.Errorf("%s: VerifyKey = %+v, %v; want unauthenticated", name, p, err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error quotes the secret: %v", name, err)
		}
		// Through HTTP too, where the header allows it.
		if strings.ContainsAny(raw, "\x00") || raw != strings.TrimSpace(raw) || raw == "" {
			continue
		}
		resp := e.do(t, "GET", "/apikeys", nil, nil, bearer(raw)...)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: GET /apikeys with it: %d, want 401", name, resp.StatusCode)
		}
	}
	// The real key still works after all that.
	if _, err := e.keys.VerifyKey(context.Background(), k.Key); err != nil {
		t.Fatal(err)
	}
}

// The hashes are compared in constant time, and what is compared is the
// SHA-256 of the presented key, never the key: an attacker who could time
// the comparison would learn about digests of their own guesses, not
// about the secret. This checks what makes that hold: a key that differs
// from the real one in its first or in its last character yields a digest
// that differs from the stored one from its first bytes on, so where the
// guess differs does not decide how long the comparison runs.
func TestTheComparisonIsOverDigests(t *testing.T) {
	raw, _, sum := newKey()
	if sum != sha256.Sum256([]byte(raw)) {
		t.Fatal("the stored value is not the SHA-256 of the key")
	}
	n := len(raw)
	for _, guess := range []string{raw[:n-1] + "a", raw[:n-1] + "b", raw[:len(auth.APIKeyPrefix)+idLen+1] + "a" + raw[len(auth.APIKeyPrefix)+idLen+2:]} {
		if guess == raw {
			continue
		}
		g := hash(guess)
		same := 0
		for same < len(g) && g[same] == sum[same] {
			same++
		}
		if same > 4 {
			t.Fatalf("a guess one character off shares %d leading digest bytes", same)
		}
	}
}

// Two quick uses write last_used_at once, also across two instances; after
// the interval a use writes it again.
func TestLastUsedIsWrittenAtMostOncePerInterval(t *testing.T) {
	cfg := defaultConfig()
	cfg.CacheTTL = 0 // every use reads the row: the writes are all that is counted
	e := newEnv(t, cfg)
	ctx := context.Background()
	// Count the row writes that change last_used_at.
	for _, q := range []string{
		`CREATE TABLE public.touches (n int NOT NULL)`,
		`INSERT INTO public.touches VALUES (0)`,
		`CREATE FUNCTION public.count_touch() RETURNS trigger AS $$ BEGIN UPDATE public.touches SET n = n + 1; RETURN NEW; END; $$ LANGUAGE plpgsql`,
		`CREATE TRIGGER count_touch AFTER UPDATE ON auth.api_keys FOR EACH ROW
			WHEN (OLD.last_used_at IS DISTINCT FROM NEW.last_used_at) EXECUTE FUNCTION public.count_touch()`,
	} {
		if _, err := e.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	touches := func() int {
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT n FROM public.touches`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	k := e.create(t, "busy", "read")
	other := e.verifier(cfg)
	for _, v := range []*Verifier{e.keys, e.keys, other, e.keys} {
		if _, err := v.VerifyKey(ctx, k.Key); err != nil {
			t.Fatal(err)
		}
	}
	if n := touches(); n != 1 {
		t.Fatalf("four quick uses on two instances wrote last_used_at %d times, want 1", n)
	}
	var list api.APIKeys
	e.do(t, "GET", "/apikeys", nil, &list, e.admin...)
	if list.Keys[0].LastUsedAt == nil || time.Since(*list.Keys[0].LastUsedAt) > time.Minute {
		t.Fatalf("last_used_at %v", list.Keys[0].LastUsedAt)
	}

	// After the interval (of this process's clock and of the row's) the
	// next use writes again.
	short := cfg
	short.TouchEvery = 50 * time.Millisecond
	v := e.verifier(short)
	time.Sleep(60 * time.Millisecond)
	if _, err := v.VerifyKey(ctx, k.Key); err != nil {
		t.Fatal(err)
	}
	if n := touches(); n != 2 {
		t.Fatalf("a use after the interval: %d writes, want 2", n)
	}
}

// Managing keys needs an admin outside `docstream dev`, also in open mode:
// no credential is 401 with a challenge, a person or a key without admin
// 403; an admin person or an admin-scoped key may. In dev (open mode)
// anyone may.
func TestManagingKeysNeedsAnAdminOutsideDev(t *testing.T) {
	e := newEnv(t, defaultConfig())
	reader := e.create(t, "reader", "read", "write", "sign")
	admin := e.create(t, "admin key", "admin")
	body := api.CreateAPIKeyRequest{Name: "x", Scopes: []string{"read"}}
	for _, tc := range []struct {
		name   string
		header []string
		want   int
	}{
		{"no credential", nil, http.StatusUnauthorized},
		{"a person who is not an admin", bearer(e.token(t, "bob", false)), http.StatusForbidden},
		{"a key without the admin scope", bearer(reader.Key), http.StatusForbidden},
		{"an admin", e.admin, http.StatusCreated},
		{"a key with the admin scope", bearer(admin.Key), http.StatusCreated},
	} {
		resp := e.do(t, "POST", "/apikeys", body, nil, tc.header...)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: POST /apikeys %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if tc.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: no Bearer challenge", tc.name)
		}
		if tc.want >= 400 {
			for _, m := range []string{"GET /apikeys", "DELETE /apikeys/" + reader.ID} {
				method, path, _ := strings.Cut(m, " ")
				if resp := e.do(t, method, path, nil, nil, tc.header...); resp.StatusCode != tc.want {
					t.Errorf("%s: %s %d, want %d", tc.name, m, resp.StatusCode, tc.want)
				}
			}
		}
	}
	if _, err := e.keys.VerifyKey(context.Background(), reader.Key); err != nil {
		t.Fatalf("a refused revoke revoked: %v", err)
	}

	// In required mode no credential is refused before the service.
	req := newEnvMode(t, defaultConfig(), auth.ModeRequired)
	if resp := req.do(t, "GET", "/apikeys", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("required mode, no credential: %d", resp.StatusCode)
	}
	if resp := req.do(t, "GET", "/apikeys", nil, nil, req.admin...); resp.StatusCode != http.StatusOK {
		t.Errorf("required mode, an admin: %d", resp.StatusCode)
	}

	dev := defaultConfig()
	dev.AdminOpen = true
	d := newEnv(t, dev)
	var k api.CreatedAPIKey
	if resp := d.do(t, "POST", "/apikeys", body, &k); resp.StatusCode != http.StatusCreated || k.CreatedBy != "" {
		t.Fatalf("dev, anonymous: %d %+v", resp.StatusCode, k.APIKey)
	}
	if resp := d.do(t, "DELETE", "/apikeys/"+k.ID, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("dev, anonymous revoke: %d", resp.StatusCode)
	}
}

// An admin-scoped key is an admin principal; any key's scopes are a cap,
// never nil (nil would mean "no cap").
func TestAKeyIsCappedByItsScopes(t *testing.T) {
	e := newEnv(t, defaultConfig())
	ctx := context.Background()
	for _, tc := range []struct {
		scopes []string
		admin  bool
		may    []auth.Level
		not    []auth.Level
	}{
		{[]string{"read"}, false, []auth.Level{auth.LevelView}, []auth.Level{auth.LevelEdit, auth.LevelSign, auth.LevelOwn}},
		{[]string{"sign"}, false, []auth.Level{auth.LevelSign}, []auth.Level{auth.LevelView, auth.LevelEdit}},
		{[]string{"write"}, false, []auth.Level{auth.LevelEdit, auth.LevelOwn}, []auth.Level{auth.LevelView, auth.LevelSign}},
		{[]string{"admin"}, true, []auth.Level{auth.LevelView, auth.LevelEdit, auth.LevelSign, auth.LevelOwn}, nil},
	} {
		k := e.create(t, strings.Join(tc.scopes, "+"), tc.scopes...)
		p, err := e.keys.VerifyKey(ctx, k.Key)
		if err != nil {
			t.Fatal(err)
		}
		if p.Scopes == nil || p.Admin != tc.admin || p.MayAdminister() != tc.admin {
			t.Errorf("%v: %+v", tc.scopes, p)
		}
		for _, l := range tc.may {
			if !p.ScopeAllows(l) {
				t.Errorf("%v may not %s", tc.scopes, l)
			}
		}
		for _, l := range tc.not {
			if p.ScopeAllows(l) {
				t.Errorf("%v may %s", tc.scopes, l)
			}
		}
	}
}

func TestCreateValidatesEveryField(t *testing.T) {
	e := newEnv(t, defaultConfig())
	for _, tc := range []struct {
		name  string
		body  any
		want  int
		field string
	}{
		{"no name", map[string]any{"scopes": []string{"read"}}, 422, "name"},
		{"a blank name", map[string]any{"name": "  ", "scopes": []string{"read"}}, 422, "name"},
		{"a name too long", map[string]any{"name": strings.Repeat("n", MaxNameLen+1), "scopes": []string{"read"}}, 422, "name"},
		{"a name with a newline", map[string]any{"name": "a\nb", "scopes": []string{"read"}}, 422, "name"},
		{"no scopes", map[string]any{"name": "n"}, 422, "scopes"},
		{"empty scopes", map[string]any{"name": "n", "scopes": []string{}}, 422, "scopes"},
		{"an unknown scope", map[string]any{"name": "n", "scopes": []string{"read", "root"}}, 422, "scopes"},
		{"scopes not a list", map[string]any{"name": "n", "scopes": "read"}, 422, "scopes"},
		{"a bad expires_in", map[string]any{"name": "n", "scopes": []string{"read"}, "expires_in": "soon"}, 422, "expires_in"},
		{"a negative expires_in", map[string]any{"name": "n", "scopes": []string{"read"}, "expires_in": "-1h"}, 422, "expires_in"},
		{"expires_in under a minute", map[string]any{"name": "n", "scopes": []string{"read"}, "expires_in": "30s"}, 422, "expires_in"},
		{"expires_in over ten years", map[string]any{"name": "n", "scopes": []string{"read"}, "expires_in": "3651d"}, 422, "expires_in"},
		{"expires_in a number", map[string]any{"name": "n", "scopes": []string{"read"}, "expires_in": 3600}, 422, "expires_in"},
		{"an unknown field", map[string]any{"name": "n", "scopes": []string{"read"}, "secret": "mine"}, 422, "secret"},
		{"malformed JSON", `{"name":`, 400, ""},
		{"a body too large", `{"name":"` + strings.Repeat("n", 16<<10) + `"}`, 413, ""},
		{"days", map[string]any{"name": "n", "scopes": []string{"read"}, "expires_in": "90d"}, 201, ""},
	} {
		var out struct {
			Error apperr.Error `json:"error"`
		}
		resp := e.do(t, "POST", "/apikeys", tc.body, nil, e.admin...)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d (%s)", tc.name, resp.StatusCode, tc.want, readAll(t, resp))
			continue
		}
		if tc.field == "" {
			continue
		}
		decodeJSON(t, resp, &out)
		if len(out.Error.Details) == 0 || out.Error.Details[0].Field != tc.field {
			t.Errorf("%s: details %+v, want field %s", tc.name, out.Error.Details, tc.field)
		}
	}
}

// The cache and the last-used bookkeeping stay bounded under a flood of
// made-up key ids.
func TestTheVerifierStaysBounded(t *testing.T) {
	v := NewVerifier(nil, defaultConfig(), nil)
	now := time.Now()
	v.now = func() time.Time { return now }
	v.mu.Lock()
	for i := range maxTracked + 1 {
		v.cache[string(rune(i))] = entry{at: now}
	}
	v.boundCache()
	n := len(v.cache)
	v.mu.Unlock()
	if n > maxTracked {
		t.Fatalf("cache holds %d entries, bound %d", n, maxTracked)
	}
}
