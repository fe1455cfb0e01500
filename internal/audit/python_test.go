package audit_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/testenv"
)

// verifier is the independent verifier (Python, python3-cryptography),
// installed by scripts/bootstrap.sh.
var verifier = filepath.Join("..", "..", "scripts", "verify_audit.py")

func runPython(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command("python3", append([]string{verifier}, args...)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("python3 %s: %v (scripts/bootstrap.sh installs python3-cryptography)", verifier, err)
	}
	return string(out), 0
}

// The independent verifier agrees with the RFC 8785 vectors, accepts an
// exported trail (hashes and Ed25519 signatures of the head and a sealed
// checkpoint), and refuses the same export tampered, naming the entry.
func TestAnIndependentVerifierChecksAnExportedTrail(t *testing.T) {
	if out, code := runPython(t, "--self-test", filepath.Join("testdata", "jcs")); code != 0 || !strings.Contains(out, "5 passed, 0 failed") {
		t.Fatalf("JCS vectors in Python: exit %d\n%s", code, out)
	}
	pool := newPool(t)
	ctx := context.Background()
	id := chain(t, pool, 3)
	// Data the canonical form must get right: non-ASCII, escapes, numbers,
	// nested objects with keys out of order.
	appendOne(t, pool, audit.Entry{DocumentID: id, Type: audit.TypeSigned, Actor: "user:zoë", IP: "2001:db8::1", UserAgent: "Mozilla/5.0 \"quoted\"",
		Data: map[string]any{"signer_name": "Zoë Ünicode €", "z": map[string]any{"b": 1.5, "a": []any{1e21, 0.002, -3, true, nil}}, "ctl": "tab\there\u0001"}})
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { _, err := audit.Seal(ctx, tx, id); return err }); err != nil {
		t.Fatal(err)
	}
	appendOne(t, pool, audit.Entry{DocumentID: id, Type: audit.TypeDownloaded, Actor: "user:alice"})
	l, err := audit.Read(ctx, pool, id)
	if err != nil {
		t.Fatal(err)
	}
	if res := audit.Verify(l, keys()); !res.Valid || !res.Signed || len(l.Checkpoints) != 1 {
		t.Fatalf("Go verify: %+v", res)
	}
	dir := t.TempDir()
	logPath, keyPath := filepath.Join(dir, "export.json"), filepath.Join(dir, "keys.json")
	testenv.WriteJSON(t, keyPath, audit.KeySet{Keys: []audit.PublicKey{audit.PublicKeyOf(testKey.Public())}})
	testenv.WriteJSON(t, logPath, l)
	if out, code := runPython(t, logPath, keyPath); code != 0 || !strings.Contains(out, `"valid": true`) || !strings.Contains(out, "signed") {
		t.Fatalf("python verify of the export: exit %d\n%s", code, out)
	}

	tampered := []struct {
		name   string
		change func(l *audit.Log)
		seq    string
	}{
		{"a changed actor", func(l *audit.Log) { l.Entries[3].Actor = "user:mallory" }, `"first_broken": 4`},
		{"a removed middle entry", func(l *audit.Log) { l.Entries = append(l.Entries[:1:1], l.Entries[2:]...) }, `"first_broken": 2`},
		{"a removed newest entry", func(l *audit.Log) { l.Entries = l.Entries[:len(l.Entries)-1] }, `"first_broken": 5`},
		{"a forged head", func(l *audit.Log) {
			l.Entries = l.Entries[:len(l.Entries)-1]
			l.Head.Seq, l.Head.Hash = 4, l.Entries[3].Hash
		}, `"first_broken": 4`},
		{"a removed newest entry and the head rolled back unsigned", func(l *audit.Log) {
			l.Entries = l.Entries[:len(l.Entries)-1]
			l.Head.Seq, l.Head.Hash, l.Head.KeyID, l.Head.Signature = 4, l.Entries[3].Hash, "", ""
		}, `"first_broken": 4`},
		{"an unsigned checkpoint", func(l *audit.Log) { l.Checkpoints[0].KeyID, l.Checkpoints[0].Signature = "", "" }, `"first_broken": 4`},
	}
	for _, c := range tampered {
		t.Run(c.name, func(t *testing.T) {
			var copyOf audit.Log
			raw, _ := json.Marshal(l)
			if err := json.Unmarshal(raw, &copyOf); err != nil {
				t.Fatal(err)
			}
			c.change(&copyOf)
			testenv.WriteJSON(t, logPath, &copyOf)
			out, code := runPython(t, logPath, keyPath)
			if code != 1 || !strings.Contains(out, `"valid": false`) || !strings.Contains(out, c.seq) {
				t.Fatalf("python verify of %s: exit %d\n%s", c.name, code, out)
			}
			if res := audit.Verify(&copyOf, keys()); res.Valid {
				t.Fatalf("Go verify accepted %s", c.name)
			}
		})
	}
}

// A crafted or truncated export is answered "invalid" with the reason, exit
// status 1, not a Python traceback.
func TestTheIndependentVerifierCallsAMalformedExportInvalid(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	testenv.WriteJSON(t, keys, map[string]any{"keys": []any{}})
	for name, export := range map[string]any{
		"an entry without fields":  map[string]any{"entries": []any{map[string]any{"seq": 1}}},
		"a list instead of a log":  []any{},
		"a head without its key":   map[string]any{"entries": []any{}, "head": map[string]any{"signature": "c2ln"}},
		"entries that are numbers": map[string]any{"entries": []any{1, 2}},
	} {
		path := filepath.Join(dir, "export.json")
		testenv.WriteJSON(t, path, export)
		out, code := runPython(t, path, keys)
		if code != 1 || !strings.Contains(out, `"valid": false`) || strings.Contains(out, "Traceback") {
			t.Errorf("%s: exit %d, %s", name, code, out)
		}
	}
}
