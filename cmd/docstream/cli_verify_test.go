package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/audit"
)

// signedTrail is a two-entry trail with its head signed by s.
func signedTrail(t *testing.T, s *audit.Signer) *api.AuditLog {
	t.Helper()
	const id = "06946681-6080-71f1-8000-e0ba48255d59"
	l := &api.AuditLog{DocumentID: id, Checkpoints: []api.AuditCheckpoint{}}
	prev := audit.ZeroHash
	for i, typ := range []string{audit.TypeCreated, audit.TypeSigned} {
		r := &api.AuditEntry{DocumentID: id, Seq: int64(i + 1), Type: typ, Actor: "user:alice", At: "2026-11-30T10:00:00.000000Z",
			IP: "192.0.2.7", UserAgent: "test", Data: json.RawMessage(`{"content_sha256":"ab"}`), PrevHash: prev, KeyID: s.KeyID}
		h, err := audit.HashOf(r)
		if err != nil {
			t.Fatal(err)
		}
		r.Hash, prev = h, h
		l.Entries = append(l.Entries, r)
	}
	l.Head = &api.AuditCheckpoint{DocumentID: id, Seq: 2, Hash: prev, KeyID: s.KeyID, SignedAt: "2026-11-30T10:00:00.000000Z"}
	msg, err := audit.Message(l.Head)
	if err != nil {
		t.Fatal(err)
	}
	l.Head.Signature = s.Sign(msg)
	return l
}

func writeFile(t *testing.T, dir, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// `docstream verify` exits 0 only for a valid trail, offline from files
// and online from the server's audit and published keys, and names the
// first broken entry otherwise.
func TestVerifyExitsZeroOnlyForAValidTrail(t *testing.T) {
	s := audit.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize)))
	good := signedTrail(t, s)
	keys := api.AuditKeySet{Keys: []api.AuditKey{audit.PublicKeyOf(s.Public())}}
	dir := t.TempDir()
	keyFile := writeFile(t, dir, "keys.json", keys)

	out, _, err := cli(t, "http://127.0.0.1:1", "verify", "--file", writeFile(t, dir, "good.json", good), "--keys", keyFile)
	if err != nil || !strings.HasPrefix(out, "VALID") {
		t.Fatalf("verify of a good export: %v\n%s", err, out)
	}

	bad := signedTrail(t, s)
	bad.Entries[1].Data = json.RawMessage(`{"content_sha256":"cd"}`)
	out, _, err = cli(t, "http://127.0.0.1:1", "verify", "--file", writeFile(t, dir, "bad.json", bad), "--keys", keyFile)
	if !errors.Is(err, errInvalidTrail) || !strings.Contains(out, "first broken entry: 2") {
		t.Fatalf("verify of a tampered export: %v\n%s", err, out)
	}

	// Online: the trail and the keys come from the server.
	var served *api.AuditLog
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/documents/" + good.DocumentID + "/audit":
			_ = json.NewEncoder(w).Encode(served)
		case "/.well-known/docstream-audit-keys":
			_ = json.NewEncoder(w).Encode(keys)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	served = good
	saved := filepath.Join(dir, "saved.json")
	if out, _, err := cli(t, srv.URL, "verify", good.DocumentID, "--save", saved, "-o", "json"); err != nil || !strings.Contains(out, `"valid": true`) {
		t.Fatalf("online verify: %v\n%s", err, out)
	}
	if out, _, err := cli(t, "http://127.0.0.1:1", "verify", "--file", saved, "--keys", keyFile); err != nil {
		t.Fatalf("verify of the saved export: %v\n%s", err, out)
	}
	served = bad
	if _, _, err := cli(t, srv.URL, "verify", good.DocumentID); !errors.Is(err, errInvalidTrail) {
		t.Fatalf("online verify of a tampered trail: %v", err)
	}
	// --since: a trail rolled back to a shorter one, whose head the server
	// genuinely signed, verifies alone but not against the export saved
	// when it was longer.
	short := signedTrail(t, s)
	short.Entries = short.Entries[:1]
	short.Head = &api.AuditCheckpoint{DocumentID: short.DocumentID, Seq: 1, Hash: short.Entries[0].Hash, KeyID: s.KeyID, SignedAt: "2026-11-30T09:00:00.000000Z"}
	msg, err := audit.Message(short.Head)
	if err != nil {
		t.Fatal(err)
	}
	short.Head.Signature = s.Sign(msg)
	shortFile := writeFile(t, dir, "short.json", short)
	if out, _, err := cli(t, "http://127.0.0.1:1", "verify", "--file", shortFile, "--keys", keyFile); err != nil {
		t.Fatalf("verify of the rolled-back trail alone: %v\n%s", err, out)
	}
	out, _, err = cli(t, "http://127.0.0.1:1", "verify", "--file", shortFile, "--keys", keyFile, "--since", saved)
	if !errors.Is(err, errInvalidTrail) || !strings.Contains(out, "rolled back") || !strings.Contains(out, "first broken entry: 2") {
		t.Fatalf("verify of the rolled-back trail --since the saved export: %v\n%s", err, out)
	}
	if out, _, err := cli(t, "http://127.0.0.1:1", "verify", "--file", saved, "--keys", keyFile, "--since", shortFile); err != nil {
		t.Fatalf("verify of the longer trail --since the shorter: %v\n%s", err, out)
	}
}
