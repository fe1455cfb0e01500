package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/docstream/docstream/internal/audit"
)

// docstream audit keygen writes a key --audit-signing-key takes (to a new
// file, or standard output), and never overwrites one.
func TestAuditKeygenMakesAKeyServeTakes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.pem")
	if _, _, err := cli(t, "", "audit", "keygen", "--out", path); err != nil {
		t.Fatal(err)
	}
	s, err := audit.LoadKey(path)
	if err != nil {
		t.Fatalf("the generated key: %v", err)
	}
	if _, _, err := cli(t, "", "audit", "keygen", "--out", path); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a second keygen to the same file: %v, want a refusal", err)
	}
	if again, err := audit.LoadKey(path); err != nil || again.KeyID != s.KeyID {
		t.Fatalf("the key after the refused overwrite: %v %v", again, err)
	}
	out, _, err := cli(t, "", "audit", "keygen")
	if err != nil {
		t.Fatal(err)
	}
	other, err := audit.LoadKey(out)
	if err != nil || other.KeyID == s.KeyID {
		t.Fatalf("the key on standard output: %v (id %v), want a fresh key", err, other)
	}
}
