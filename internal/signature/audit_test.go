package signature

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"testing"

	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/testenv"
)

// POST /signatures appends signature.created to the document's trail in
// the signature's transaction: the signer, where from, the hash of the
// signature data and the content hash that was signed.
func TestASignatureIsAudited(t *testing.T) {
	e := newEnv(t)
	s := e.startSignature(t, testOptions{})
	doc := e.createDocument(t, "nda", "the terms")
	resp, sig := s.sign(t, map[string]any{"document_id": doc.ID, "signer_email": "ann@example.com", "signer_name": "Ann",
		"signature_data": "data:image/png;base64,iVBORw0KGgo="})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("sign: %d", resp.StatusCode)
	}
	var l *audit.Log
	// The move to signed may be left to the reconciler on a loaded machine.
	testenv.WaitFor(t, "three audit entries", func() bool {
		var err error
		if l, err = audit.Read(context.Background(), e.pool, doc.ID); err != nil {
			t.Fatal(err)
		}
		return len(l.Entries) >= 3
	})
	// The signature, then the document's move to signed (applied inline
	// over gRPC by the service principal, after the signature committed).
	var got []string
	for _, r := range l.Entries {
		got = append(got, r.Type+" by "+r.Actor)
	}
	if len(l.Entries) != 3 || l.Entries[0].Type != audit.TypeCreated || l.Entries[1].Type != audit.TypeSigned ||
		l.Entries[2].Type != audit.TypeStatusChanged {
		t.Fatalf("entries: %v", got)
	}
	e2 := l.Entries[1]
	var data struct {
		SignatureID   string `json:"signature_id"`
		SignerEmail   string `json:"signer_email"`
		DataSHA256    string `json:"signature_data_sha256"`
		ContentSHA256 string `json:"content_sha256"`
	}
	if err := json.Unmarshal(e2.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.SignatureID != sig.ID || data.SignerEmail != "ann@example.com" || data.ContentSHA256 != doc.ContentSHA256 ||
		!regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(data.DataSHA256) || e2.IP != "127.0.0.1" || e2.UserAgent == "" {
		t.Fatalf("signature entry: %+v %s", e2, e2.Data)
	}
	if res := audit.Verify(l, auditKeys()); !res.Valid {
		t.Fatalf("verify: %+v", res)
	}
}
