package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/testenv"
)

// The README's key rotation, end to end: a trail whose head the old key
// signed verifies after the rotation only while the old key is published
// (--audit-verify-keys, here as a PEM public key), by `docstream verify`
// and by the independent Python verifier; the next change signs the head
// with the new key.
func TestAuditKeyRotationKeepsOldTrailsVerifiable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	oldKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{41}, ed25519.SeedSize))
	der, err := x509.MarshalPKCS8PrivateKey(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	oldFile := filepath.Join(dir, "audit-old.pem")
	if err := os.WriteFile(oldFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(oldKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	oldPub := filepath.Join(dir, "audit-old.pub.pem")
	if err := os.WriteFile(oldPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	newSeed := bytes.Repeat([]byte{42}, ed25519.SeedSize)
	newKey := "ed25519:" + base64.StdEncoding.EncodeToString(newSeed)
	oldID := audit.KeyIDOf(oldKey.Public().(ed25519.PublicKey))
	newID := audit.KeyIDOf(ed25519.NewKeyFromSeed(newSeed).Public().(ed25519.PublicKey))

	d := startDev(t, "--audit-signing-key", oldFile)
	base := append([]string(nil), d.args[:len(d.args)-2]...)
	relaunch := func(d *devSystem, extra ...string) *devSystem {
		d.stop(t)
		n := *d
		n.args = append(append([]string(nil), base...), extra...)
		n.cmd, n.output, n.exited = nil, &testenv.SyncBuffer{}, make(chan error, 1)
		n.launch(t)
		return &n
	}
	doc, err := newClient(t, d.gateway).CreateDocument(ctx, api.CreateDocumentRequest{Title: "Lease", Content: "terms", CreatedBy: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}

	// Rotated without publishing the old key: the head it signed is refused.
	d = relaunch(d, "--audit-signing-key", newKey)
	out, _, err := cli(t, d.gateway, "verify", doc.ID)
	if !errors.Is(err, errInvalidTrail) || !strings.Contains(out, oldID) || !strings.Contains(out, "not among the published keys") {
		t.Fatalf("verify with the old key unpublished: %v\n%s", err, out)
	}

	// The rotation as documented: the new key signs, the old one verifies.
	d = relaunch(d, "--audit-signing-key", newKey, "--audit-verify-keys", oldPub)
	c := newClient(t, d.gateway)
	ks, err := c.AuditKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.Keys) != 2 || ks.Keys[0].KeyID != newID || ks.Keys[1].KeyID != oldID {
		t.Fatalf("published keys: %+v, want %s (signing) then %s", ks.Keys, newID, oldID)
	}
	keysFile := filepath.Join(dir, "keys.json")
	testenv.WriteJSON(t, keysFile, ks)
	export := filepath.Join(dir, "trail.json")
	if out, _, err := cli(t, d.gateway, "verify", doc.ID, "--save", export); err != nil || !strings.Contains(out, "key "+oldID) {
		t.Fatalf("verify of the head the old key signed: %v\n%s", err, out)
	}
	pythonVerify(t, export, keysFile)

	// The next change is signed by the new key; the trail holds both.
	if _, err := c.UpdateDocument(ctx, doc.ID, api.UpdateDocumentRequest{Title: "Lease v2"}); err != nil {
		t.Fatal(err)
	}
	export2 := filepath.Join(dir, "trail2.json")
	if out, _, err := cli(t, d.gateway, "verify", doc.ID, "--save", export2, "--since", export); err != nil || !strings.Contains(out, "key "+newID) {
		t.Fatalf("verify after the next change: %v\n%s", err, out)
	}
	export = export2
	var l api.AuditLog
	raw, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &l); err != nil {
		t.Fatal(err)
	}
	if first, last := l.Entries[0], l.Entries[len(l.Entries)-1]; first.KeyID != oldID || last.KeyID != newID {
		t.Fatalf("entries' keys: first %s, last %s", first.KeyID, last.KeyID)
	}
	pythonVerify(t, export, keysFile)
}

// pythonVerify runs the independent verifier (scripts/verify_audit.py,
// python3-cryptography from scripts/bootstrap.sh) and wants it valid.
func pythonVerify(t *testing.T, export, keys string) {
	t.Helper()
	out, err := exec.Command("python3", filepath.Join("..", "..", "scripts", "verify_audit.py"), export, keys).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"valid": true`) {
		t.Fatalf("python verify: %v\n%s", err, out)
	}
}
