package cdc_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/docstream/docstream/internal/bus"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// mask replaces the fields that differ from run to run with fixed values,
// keeping their type and (for timestamps) their exact format, so the golden
// files pin everything else byte for byte:
//   - "ts_ms", "txId", "lsn" numbers → 0
//   - "sequence" → "[\"0\",\"0\"]" with its null-or-string shape kept
//   - "db" → "db"
//   - timestamps written as 2006-01-02T15:04:05.000000Z → 2000-01-01T00:00:00.000000Z
//     (anything not in exactly that layout stays and breaks the comparison)
func mask(b []byte) []byte {
	for _, r := range []struct {
		re   *regexp.Regexp
		with string
	}{
		{regexp.MustCompile(`"(ts_ms|txId|lsn)":\d+`), `"$1":0`},
		{regexp.MustCompile(`"sequence":"\[(null|\\"\d+\\"),\\"\d+\\"\]"`), `"sequence":"[$1,\"0\"]"`},
		{regexp.MustCompile(`\\"\d+\\",`), `\"0\",`},
		{regexp.MustCompile(`"db":"[^"]*"`), `"db":"db"`},
		{regexp.MustCompile(`"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z"`), `"2000-01-01T00:00:00.000000Z"`},
	} {
		b = r.re.ReplaceAll(b, []byte(r.with))
	}
	return b
}

// TestGoldenEnvelopes pins the exact bytes (key TAB value per line) of a
// snapshot read, create, update and delete event on both tables.
func TestGoldenEnvelopes(t *testing.T) {
	f := newFixture(t)
	const docA, sigA = "0691e72f-799b-7efd-8000-e5c4e1cb7813", "0691e72f-8000-7000-8000-000000000001"
	const docB, sigB = "0691e72f-799b-7efd-8000-00000000000b", "0691e72f-8000-7000-8000-00000000000b"
	// Existing before the engine's first start: snapshot reads.
	f.Exec(t, `INSERT INTO documents.documents (id, title, content_size, s3_key, created_by) VALUES ($1::uuid, 'Sales Agreement Q4 2025', 36, $1::text || '/content', 'john.doe@company.com')`, docA)
	f.Exec(t, `INSERT INTO signatures.signatures (id, document_id, signer_email, signer_name, signature_data, ip_address) VALUES ($1, $2, 'jane@example.com', 'Jane "JJ" Doe', 'sig<&>data', '10.0.0.1')`, sigA, docA)
	c := collect(t, f.Bus, bus.TopicDocuments, bus.TopicSignatures)
	f.StartEngine(t, f.Config(), f.Bus)

	f.Exec(t, `INSERT INTO documents.documents (id, title, content_type, content_size, s3_key, created_by) VALUES ($1, 'Línea
nueva', 'application/pdf', NULL, NULL, 'ann@company.com')`, docB)
	f.Exec(t, `INSERT INTO signatures.signatures (id, document_id, signer_email, signer_name) VALUES ($1, $2, 'bob@example.com', 'Bob')`, sigB, docB)
	f.Exec(t, `UPDATE documents.documents SET status = 'sent', version = version + 1 WHERE id = $1`, docB)
	f.Exec(t, `UPDATE signatures.signatures SET signer_name = 'Robert' WHERE id = $1`, sigB)
	f.Exec(t, `DELETE FROM signatures.signatures WHERE id = $1`, sigB)
	f.Exec(t, `DELETE FROM documents.documents WHERE id = $1`, docB)

	for _, topic := range []string{bus.TopicDocuments, bus.TopicSignatures} {
		compareGolden(t, topic, c.waitCount(t, topic, 4))
	}
}

// compareGolden compares msgs (key TAB masked value per line) with
// testdata/<topic>.golden, or rewrites it with -update.
func compareGolden(t *testing.T, topic string, msgs []bus.Message) {
	t.Helper()
	var got bytes.Buffer
	for _, m := range msgs {
		got.Write(m.Key)
		got.WriteByte('\t')
		got.Write(mask(m.Value))
		got.WriteByte('\n')
	}
	path := filepath.Join("testdata", topic+".golden")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("%s events differ from %s\ngot:\n%s\nwant:\n%s", topic, path, got.Bytes(), want)
	}
}

// TestGoldenSigningEnvelopes pins the events of the signing workflow's two
// tables (a snapshot read, a request created, sent, in progress and
// completed; recipients notified, viewed and signed; a delete) and shows
// what never reaches them: a recipient's IP address and user agent
// (excluded columns, in snapshots and while streaming) and an invitation
// token's hash (signing.invitations is not captured).
func TestGoldenSigningEnvelopes(t *testing.T) {
	f := newFixture(t)
	const doc = "0691e72f-799b-7efd-8000-e5c4e1cb7813"
	const reqA, recA = "0691e72f-9000-7000-8000-00000000000a", "0691e72f-9100-7000-8000-00000000000a"
	const reqB, recB1, recB2 = "0691e72f-9000-7000-8000-00000000000b", "0691e72f-9100-7000-8000-0000000000b1", "0691e72f-9100-7000-8000-0000000000b2"
	const ip, ua = "203.0.113.77", "SecretBrowser/9.9 (personal)"
	sha := strings.Repeat("ab", 32)
	insertRequest := func(id, state string) {
		f.Exec(t, `INSERT INTO signing.signing_requests (id, document_id, owner, created_by, state, message, content_sha256, content_key, document_version, reminder_every)
			VALUES ($1, $2::uuid, 'user:alice', 'alice@example.com', $3, 'Please sign "this"', $4, $2::text || '/content', 3, interval '1 day 02:00:00')`, id, doc, state, sha)
	}
	insertRecipient := func(id, req, email string, order int) {
		f.Exec(t, `INSERT INTO signing.signing_recipients (id, request_id, document_id, email, name, role, signing_order, ip_address, user_agent)
			VALUES ($1, $2, $3, $4, 'Bob', 'signer', $5, $6, $7)`, id, req, doc, email, order, ip, ua)
	}
	// Before the engine's first start: snapshot reads, with the excluded
	// columns filled in.
	insertRequest(reqA, "completed")
	insertRecipient(recA, reqA, "bob@example.com", 1)
	all := collect(t, f.Bus, bus.TopicDocuments, bus.TopicSignatures, bus.TopicExtractions, bus.TopicSigningRequests, bus.TopicSigningRecipients)
	f.StartEngine(t, f.Config(), f.Bus)

	insertRequest(reqB, "draft")
	insertRecipient(recB1, reqB, "carol@example.com", 1)
	insertRecipient(recB2, reqB, "dan@example.com", 2)
	token := sha256.Sum256([]byte("the invitation token"))
	f.Exec(t, `INSERT INTO signing.invitations (token_sha256, request_id, recipient_id, content_sha256) VALUES ($1, $2, $3, $4)`, token[:], reqB, recB1, sha)
	f.Exec(t, `UPDATE signing.signing_requests SET state = 'sent', sent_at = now(), updated_at = now() WHERE id = $1`, reqB)
	f.Exec(t, `UPDATE signing.signing_recipients SET state = 'notified', notified_at = now() WHERE id = $1`, recB1)
	f.Exec(t, `UPDATE signing.signing_recipients SET state = 'viewed', viewed_at = now(), ip_address = '198.51.100.9', user_agent = $2 WHERE id = $1`, recB1, ua+" v2")
	f.Exec(t, `UPDATE signing.signing_requests SET state = 'in_progress', updated_at = now() WHERE id = $1`, reqB)
	f.Exec(t, `UPDATE signing.signing_recipients SET state = 'signed', acted_at = now(), consent_at = now() WHERE id = $1`, recB1)
	f.Exec(t, `UPDATE signing.signing_requests SET state = 'completed', completed_at = now(), updated_at = now(), outcome = 'completed' WHERE id = $1`, reqB)
	f.Exec(t, `DELETE FROM signing.invitations WHERE request_id = $1`, reqB)
	f.Exec(t, `DELETE FROM signing.signing_recipients WHERE id = $1`, recB2)

	compareGolden(t, bus.TopicSigningRequests, all.waitCount(t, bus.TopicSigningRequests, 5))
	compareGolden(t, bus.TopicSigningRecipients, all.waitCount(t, bus.TopicSigningRecipients, 7))

	// Nothing secret on any topic: not the excluded columns' values, not
	// the token's hash in any encoding the stream uses.
	secrets := []string{ip, "198.51.100.9", ua, "ip_address", "user_agent",
		base64.StdEncoding.EncodeToString(token[:]), hex.EncodeToString(token[:]), "invitations"}
	msgs := all.snapshot()
	if len(msgs) < 12 {
		t.Fatalf("%d events; want at least the 12 of the signing tables", len(msgs))
	}
	for _, m := range msgs {
		for _, s := range secrets {
			if bytes.Contains(m.Value, []byte(s)) || bytes.Contains(m.Key, []byte(s)) {
				t.Errorf("event on %s holds %q: %s", m.Topic, s, m.Value)
			}
		}
	}
}
