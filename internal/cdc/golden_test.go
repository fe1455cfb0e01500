package cdc_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
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
		msgs := c.waitCount(t, topic, 4)
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
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s events differ from %s\ngot:\n%s\nwant:\n%s", topic, path, got.Bytes(), want)
		}
	}
}
