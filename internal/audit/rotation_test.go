package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/testenv"
)

// A trail signed across a key rotation (a checkpoint sealed with the old
// key, the head by the new one) verifies, in Go and in the independent
// verifier, with the key set the server publishes after the rotation (the
// new key and --audit-verify-keys); without the old key it does not, and
// the answer names the checkpoint and its key.
func TestATrailSignedAcrossARotationVerifiesWithThePublishedKeys(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	id := chain(t, pool, 3)
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { _, err := audit.Seal(ctx, tx, id); return err }); err != nil {
		t.Fatal(err)
	}

	// The rotation: a new key signs, the old one only verifies.
	newKey := audit.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{11}, ed25519.SeedSize)))
	audit.SetSigner(newKey)
	audit.SetVerifyKeys([]ed25519.PublicKey{testKey.Public()})
	t.Cleanup(func() { audit.SetSigner(testKey); audit.SetVerifyKeys(nil) })
	appendOne(t, pool, audit.Entry{DocumentID: id, Type: audit.TypeDownloaded, Actor: "user:alice"})

	published := audit.PublishedKeys()
	if len(published.Keys) != 2 || published.Keys[0].KeyID != newKey.KeyID || published.Keys[1].KeyID != testKey.KeyID {
		t.Fatalf("published keys: %+v, want the new key then the old", published.Keys)
	}
	keyMap, err := audit.KeyMap(published)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Read(ctx, pool, id)
	if err != nil {
		t.Fatal(err)
	}
	if l.Head.KeyID != newKey.KeyID || l.Checkpoints[0].KeyID != testKey.KeyID || l.Entries[2].KeyID != testKey.KeyID || l.Entries[3].KeyID != newKey.KeyID {
		t.Fatalf("keys of the trail: head %s, checkpoint %s", l.Head.KeyID, l.Checkpoints[0].KeyID)
	}
	if res := audit.Verify(l, keyMap); !res.Valid || !res.Signed {
		t.Fatalf("verify across the rotation: %+v", res)
	}
	dir := t.TempDir()
	logPath, keyPath := filepath.Join(dir, "export.json"), filepath.Join(dir, "keys.json")
	testenv.WriteJSON(t, logPath, l)
	testenv.WriteJSON(t, keyPath, published)
	if out, code := runPython(t, logPath, keyPath); code != 0 || !strings.Contains(out, `"valid": true`) {
		t.Fatalf("python verify across the rotation: exit %d\n%s", code, out)
	}

	// The old key dropped from the published set: its checkpoint no longer
	// verifies.
	onlyNew := map[string]ed25519.PublicKey{newKey.KeyID: newKey.Public()}
	res := audit.Verify(l, onlyNew)
	if res.Valid || res.FirstBroken == nil || res.FirstBroken.Seq != 3 || !strings.Contains(res.Reason, testKey.KeyID) || !strings.Contains(res.Reason, "not among the published keys") {
		t.Fatalf("verify without the old key: %+v %+v", res, res.FirstBroken)
	}
	testenv.WriteJSON(t, keyPath, audit.KeySet{Keys: []audit.PublicKey{audit.PublicKeyOf(newKey.Public())}})
	if out, code := runPython(t, logPath, keyPath); code != 1 || !strings.Contains(out, `"first_broken": 3`) {
		t.Fatalf("python verify without the old key: exit %d\n%s", code, out)
	}
}

// --audit-verify-keys takes private keys in both forms --audit-signing-key
// takes, PEM public keys, inline or in files, and refuses anything else
// naming the flag.
func TestLoadVerifyKeysReadsEveryForm(t *testing.T) {
	seed := bytes.Repeat([]byte{21}, ed25519.SeedSize)
	a := ed25519.NewKeyFromSeed(seed)
	_, b, _ := ed25519.GenerateKey(nil)
	der, err := x509.MarshalPKIXPublicKey(b.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	_, c, _ := ed25519.GenerateKey(nil)
	privDER, err := x509.MarshalPKCS8PrivateKey(c)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pubFile, privFile := filepath.Join(dir, "old.pub.pem"), filepath.Join(dir, "old.pem")
	if err := os.WriteFile(pubFile, pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(privFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := audit.LoadVerifyKeys("ed25519:" + base64.StdEncoding.EncodeToString(seed) + " , " + pubFile + "," + privFile + "," + string(pubPEM))
	if err != nil {
		t.Fatal(err)
	}
	want := []ed25519.PublicKey{a.Public().(ed25519.PublicKey), b.Public().(ed25519.PublicKey), c.Public().(ed25519.PublicKey), b.Public().(ed25519.PublicKey)}
	if len(got) != len(want) {
		t.Fatalf("got %d keys, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Fatalf("key %d differs", i)
		}
	}
	if keys, err := audit.LoadVerifyKeys(""); err != nil || len(keys) != 0 {
		t.Fatalf("empty: %v %v", keys, err)
	}
	for _, bad := range []string{filepath.Join(dir, "missing.pem"), "ed25519:short", pubFile + ",-----BEGIN NOTHING-----"} {
		if _, err := audit.LoadVerifyKeys(bad); err == nil || !strings.Contains(err.Error(), "--audit-verify-keys") {
			t.Fatalf("%q: %v, want a refusal naming the flag", bad, err)
		}
	}
}
