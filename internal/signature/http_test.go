package signature

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/testenv"
)

// The reference README's curl walkthrough, unchanged: create a document on
// the document service, sign it on the signature service with the
// reference's payload (document_status "pending" included), and the
// document then reads "signed".
func TestReferenceWalkthroughEndsWithTheDocumentSigned(t *testing.T) {
	e := newEnv(t)
	sig := e.startSignature(t, testOptions{})
	content := "This agreement outlines the terms..."
	doc := e.createDocument(t, "Sales Agreement Q4 2025", content)

	resp, got := sig.sign(t, `{
		"document_id": "`+doc.ID+`",
		"signer_email": "ebemad@client.com",
		"signer_name": "Ebrahim Emad",
		"signature_data": "base64encoded_signature_image_data_here",
		"document_status":"pending"
	}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("sign: status %d: %s", resp.StatusCode, readBody(resp))
	}
	if _, err := uuid.Parse(got.ID); err != nil {
		t.Errorf("id %q is not a UUID", got.ID)
	}
	if got.DocumentID != doc.ID || got.SignerEmail != "ebemad@client.com" || got.SignerName != "Ebrahim Emad" {
		t.Errorf("response echoes %+v", got)
	}
	if got.SignatureData == nil || *got.SignatureData != "base64encoded_signature_image_data_here" {
		t.Errorf("signature_data = %v", got.SignatureData)
	}
	if got.IPAddress == nil || *got.IPAddress != "127.0.0.1" {
		t.Errorf("ip_address = %v, want the client address 127.0.0.1", got.IPAddress)
	}
	// Decoding into time.Time already required RFC 3339.
	if got.SignedAt.IsZero() {
		t.Errorf("signed_at is missing")
	}
	if got.DocumentStatusUpdate != "applied" {
		t.Errorf("document_status_update = %q, want applied", got.DocumentStatusUpdate)
	}
	// What was signed: the version and content hash the document had.
	sum := sha256.Sum256([]byte(content))
	if got.ContentSHA256 == nil || *got.ContentSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("content_sha256 = %v, want %x", got.ContentSHA256, sum)
	}
	if got.DocumentVersion == nil || *got.DocumentVersion != doc.Version {
		t.Errorf("document_version = %v, want %d", got.DocumentVersion, doc.Version)
	}
	if s := e.documentStatus(t, doc.ID); s != "signed" {
		t.Fatalf("document status %q after signing, want signed", s)
	}

	// The signature reads back the same from every listing.
	var one signatureJSON
	if r := testenv.Do(t, "GET", sig.url+"/signatures/"+got.ID, nil, &one); r.StatusCode != http.StatusOK || !reflect.DeepEqual(one, got) {
		t.Errorf("GET /signatures/{id}: %d %+v, want %+v", r.StatusCode, one, got)
	}
	var byDoc []signatureJSON
	if r := testenv.Do(t, "GET", sig.url+"/documents/"+doc.ID+"/signatures", nil, &byDoc); r.StatusCode != http.StatusOK || len(byDoc) != 1 || !reflect.DeepEqual(byDoc[0], got) {
		t.Errorf("GET /documents/{id}/signatures: %d %+v", r.StatusCode, byDoc)
	}
	var all []signatureJSON
	if r := testenv.Do(t, "GET", sig.url+"/signatures", nil, &all); r.StatusCode != http.StatusOK || len(all) != 1 || !reflect.DeepEqual(all[0], got) {
		t.Errorf("GET /signatures: %d %+v", r.StatusCode, all)
	}
}

func TestSigningTwiceKeepsBothSignaturesAndTheDocumentSigned(t *testing.T) {
	e := newEnv(t)
	sig := e.startSignature(t, testOptions{})
	doc := e.createDocument(t, "Twice", "x")
	for i := range 2 {
		resp, got := sig.sign(t, map[string]any{"document_id": doc.ID, "signer_email": "a@b.co", "signer_name": fmt.Sprint("Signer ", i)})
		if resp.StatusCode != http.StatusCreated || got.DocumentStatusUpdate != "applied" {
			t.Fatalf("signature %d: status %d, update %q: %s", i, resp.StatusCode, got.DocumentStatusUpdate, readBody(resp))
		}
	}
	if s := e.documentStatus(t, doc.ID); s != "signed" {
		t.Fatalf("status %q, want signed", s)
	}
	var byDoc []signatureJSON
	testenv.Do(t, "GET", sig.url+"/documents/"+doc.ID+"/signatures", nil, &byDoc)
	if len(byDoc) != 2 || byDoc[0].SignerName != "Signer 0" || byDoc[1].SignerName != "Signer 1" {
		t.Fatalf("signatures of the document, in signing order: %+v", byDoc)
	}
}

func TestDocumentsThatCannotBeSignedAreRefused(t *testing.T) {
	e := newEnv(t)
	sig := e.startSignature(t, testOptions{})
	for _, st := range []string{"cancelled", "archived", "completed"} {
		t.Run(st, func(t *testing.T) {
			doc := e.createDocument(t, "Refused "+st, "x")
			if st == "completed" {
				e.setStatus(t, doc.ID, "signed")
			}
			e.setStatus(t, doc.ID, st)
			var er apperr.Body
			resp := testenv.Do(t, "POST", sig.url+"/signatures",
				map[string]any{"document_id": doc.ID, "signer_email": "a@b.co", "signer_name": "A"}, &er)
			if resp.StatusCode != http.StatusConflict || er.Error.Code != "conflict" ||
				!strings.Contains(er.Error.Message, doc.ID) || !strings.Contains(er.Error.Message, st) {
				t.Fatalf("status %d, error %+v; want 409 conflict naming the document and %s", resp.StatusCode, er.Error, st)
			}
			if s := e.documentStatus(t, doc.ID); s != st {
				t.Errorf("document status changed to %q", s)
			}
			var byDoc []signatureJSON
			testenv.Do(t, "GET", sig.url+"/documents/"+doc.ID+"/signatures", nil, &byDoc)
			if len(byDoc) != 0 {
				t.Errorf("a refused signature was stored: %+v", byDoc)
			}
		})
	}
}

func TestEveryStatusThatMaySignEndsSigned(t *testing.T) {
	e := newEnv(t)
	sig := e.startSignature(t, testOptions{})
	for _, st := range []string{"created", "sent", "viewed", "pending", "approved", "signed"} {
		doc := e.createDocument(t, "From "+st, "x")
		if st != "created" {
			e.setStatus(t, doc.ID, st)
		}
		resp, got := sig.sign(t, map[string]any{"document_id": doc.ID, "signer_email": "a@b.co", "signer_name": "A"})
		if resp.StatusCode != http.StatusCreated || got.DocumentStatusUpdate != "applied" {
			t.Fatalf("from %s: status %d, update %q: %s", st, resp.StatusCode, got.DocumentStatusUpdate, readBody(resp))
		}
		if s := e.documentStatus(t, doc.ID); s != "signed" {
			t.Errorf("from %s: document reads %q, want signed", st, s)
		}
	}
}

// Every field's bad values, each with its exact status, error code and
// the field named.
func TestBadInputIsRefusedNamingTheField(t *testing.T) {
	e := newEnv(t)
	sig := e.startSignature(t, testOptions{})
	doc := e.createDocument(t, "Bad input", "x")
	missing := uuid.Must(uuid.NewV7()).String()
	ok := map[string]any{"document_id": doc.ID, "signer_email": "a@b.co", "signer_name": "A"}
	with := func(field string, v any) map[string]any {
		m := map[string]any{}
		for k, x := range ok {
			m[k] = x
		}
		if v == nil {
			delete(m, field)
		} else {
			m[field] = v
		}
		return m
	}
	cases := []struct {
		name   string
		body   any
		status int
		code   apperr.Code
		field  string // "" when the error names no field
	}{
		{"malformed JSON is invalid", `{"document_id":`, 400, "invalid", ""},
		{"an empty body is invalid", ``, 400, "invalid", ""},
		{"a JSON array is invalid", `[]`, 400, "invalid", ""},
		{"an unknown field is refused", with("signer_phone", "123"), 422, "validation", "signer_phone"},
		{"document_id is required", with("document_id", nil), 422, "validation", "document_id"},
		{"document_id must be a string", with("document_id", 5), 422, "validation", "document_id"},
		{"document_id must be a UUID", with("document_id", "not-a-uuid"), 422, "validation", "document_id"},
		{"document_id must be a canonical UUID", with("document_id", "{"+doc.ID+"}"), 422, "validation", "document_id"},
		{"a document that does not exist is not found", with("document_id", missing), 404, "not_found", ""},
		{"signer_email is required", with("signer_email", nil), 422, "validation", "signer_email"},
		{"signer_email must not be empty", with("signer_email", ""), 422, "validation", "signer_email"},
		{"signer_email must be an address", with("signer_email", "not-an-email"), 422, "validation", "signer_email"},
		{"signer_email needs a domain with a dot", with("signer_email", "a@localhost"), 422, "validation", "signer_email"},
		{"signer_email must be a bare address", with("signer_email", "A <a@b.co>"), 422, "validation", "signer_email"},
		{"signer_email is at most 255 characters", with("signer_email", strings.Repeat("a", 250)+"@b.com"), 422, "validation", "signer_email"},
		{"signer_name is required", with("signer_name", nil), 422, "validation", "signer_name"},
		{"signer_name must not be empty", with("signer_name", ""), 422, "validation", "signer_name"},
		{"signer_name must not be blank", with("signer_name", "   "), 422, "validation", "signer_name"},
		{"signer_name is at most 255 characters", with("signer_name", strings.Repeat("é", 256)), 422, "validation", "signer_name"},
		{"signer_name must not hold NUL", with("signer_name", "A\u0000B"), 422, "validation", "signer_name"},
		{"signer_name must be a string", with("signer_name", true), 422, "validation", "signer_name"},
		{"signature_data is at most 1 MiB", with("signature_data", strings.Repeat("a", MaxSignatureData+1)), 422, "validation", "signature_data"},
		{"signature_data must not hold NUL", with("signature_data", "a\u0000b"), 422, "validation", "signature_data"},
		{"a body over the limit is too large", with("signature_data", strings.Repeat("a", maxBody)), 413, "too_large", ""},
		{"document_status must be a status", with("document_status", "bogus"), 422, "validation", "document_status"},
		{"document_status must be a string", with("document_status", 3), 422, "validation", "document_status"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var er apperr.Body
			resp := testenv.Do(t, "POST", sig.url+"/signatures", c.body, &er)
			if resp.StatusCode != c.status || er.Error.Code != c.code {
				t.Fatalf("status %d code %q (%s), want %d %q", resp.StatusCode, er.Error.Code, er.Error.Message, c.status, c.code)
			}
			if c.field != "" && (len(er.Error.Details) == 0 || er.Error.Details[0].Field != c.field) {
				t.Fatalf("details %+v, want field %q", er.Error.Details, c.field)
			}
			if c.status == 404 && !strings.Contains(er.Error.Message, missing) {
				t.Fatalf("message %q does not name the document %s", er.Error.Message, missing)
			}
		})
	}
	t.Run("a body that is not JSON is invalid, with a hint about the content type", func(t *testing.T) {
		var er apperr.Body
		resp := testenv.Do(t, "POST", sig.url+"/signatures", `document_id=x`, &er, "Content-Type", "application/x-www-form-urlencoded")
		if resp.StatusCode != 400 || er.Error.Code != "invalid" || !strings.Contains(er.Error.Message, "must be JSON") {
			t.Fatalf("status %d code %q", resp.StatusCode, er.Error.Code)
		}
	})
	t.Run("every bad field is named at once", func(t *testing.T) {
		var er apperr.Body
		resp := testenv.Do(t, "POST", sig.url+"/signatures", map[string]any{"document_id": "x", "signer_email": "y"}, &er)
		var fields []string
		for _, d := range er.Error.Details {
			fields = append(fields, d.Field)
		}
		if resp.StatusCode != 422 || strings.Join(fields, ",") != "document_id,signer_email,signer_name" {
			t.Fatalf("status %d fields %v", resp.StatusCode, fields)
		}
	})
	var all []signatureJSON
	testenv.Do(t, "GET", sig.url+"/signatures", nil, &all)
	if len(all) != 0 {
		t.Fatalf("bad input stored signatures: %+v", all)
	}
}

func TestReadsAnswerWithTheRightStatus(t *testing.T) {
	e := newEnv(t)
	sig := e.startSignature(t, testOptions{})
	doc := e.createDocument(t, "Reads", "x")
	cases := []struct {
		name, path string
		status     int
		code       apperr.Code
	}{
		{"a malformed signature id is invalid", "/signatures/nope", 400, "invalid"},
		{"an unknown signature is not found", "/signatures/" + uuid.NewString(), 404, "not_found"},
		{"a malformed document id is invalid", "/documents/nope/signatures", 400, "invalid"},
		{"a negative skip is refused", "/signatures?skip=-1", 422, "validation"},
		{"a zero limit is refused", "/signatures?limit=0", 422, "validation"},
		{"a huge limit is refused", "/signatures?limit=1001", 422, "validation"},
		{"a non-numeric limit is refused", "/signatures?limit=ten", 422, "validation"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var er apperr.Body
			resp := testenv.Do(t, "GET", sig.url+c.path, nil, &er)
			if resp.StatusCode != c.status || er.Error.Code != c.code {
				t.Fatalf("status %d code %q, want %d %q", resp.StatusCode, er.Error.Code, c.status, c.code)
			}
		})
	}
	t.Run("a document without signatures has an empty list", func(t *testing.T) {
		resp := testenv.Do(t, "GET", sig.url+"/documents/"+doc.ID+"/signatures", nil, nil)
		if body := strings.TrimSpace(readBody(resp)); resp.StatusCode != 200 || body != "[]" {
			t.Fatalf("status %d body %q, want 200 []", resp.StatusCode, body)
		}
	})
	t.Run("skip and limit page newest first", func(t *testing.T) {
		var ids []string
		for i := range 5 {
			_, got := sig.sign(t, map[string]any{"document_id": doc.ID, "signer_email": "a@b.co", "signer_name": fmt.Sprint(i)})
			ids = append(ids, got.ID)
		}
		var page []signatureJSON
		testenv.Do(t, "GET", sig.url+"/signatures?skip=1&limit=2", nil, &page)
		if len(page) != 2 || page[0].ID != ids[3] || page[1].ID != ids[2] {
			t.Fatalf("page %+v, want signatures 3 and 2", page)
		}
	})
}

func TestIPAddressIsTheObservedClientAndTrustsOnlyConfiguredProxies(t *testing.T) {
	e := newEnv(t)
	doc := e.createDocument(t, "IP", "x")
	body := map[string]any{"document_id": doc.ID, "signer_email": "a@b.co", "signer_name": "A"}
	cases := []struct {
		name, trusted, xff string
		given              string
		want               string
	}{
		{"no header: the peer", "127.0.0.1", "", "", "127.0.0.1"},
		{"from a trusted proxy: the forwarded client", "127.0.0.1", "203.0.113.7, 10.0.0.1", "", "203.0.113.7"},
		{"from an untrusted peer: the peer", "10.9.9.9", "203.0.113.7", "", "127.0.0.1"},
		{"given in the body: ignored for the observed address", "127.0.0.1", "203.0.113.7", "2001:db8::1", "203.0.113.7"},
		{"given in the body by an untrusted peer: ignored", "10.9.9.9", "", "2001:db8::1", "127.0.0.1"},
		{"not an address in the body: still accepted and ignored", "127.0.0.1", "", "<script>", "127.0.0.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sig := e.startSignature(t, testOptions{trusted: c.trusted, noRecon: true})
			b := map[string]any{}
			for k, v := range body {
				b[k] = v
			}
			if c.given != "" {
				b["ip_address"] = c.given
			}
			var got signatureJSON
			var hdr []string
			if c.xff != "" {
				hdr = []string{"X-Forwarded-For", c.xff}
			}
			resp := testenv.Do(t, "POST", sig.url+"/signatures", b, &got, hdr...)
			if resp.StatusCode != 201 || got.IPAddress == nil || *got.IPAddress != c.want {
				t.Fatalf("status %d ip %v, want %s", resp.StatusCode, got.IPAddress, c.want)
			}
		})
	}
}

// A base64 image is stored decoded with its type; anything else as given.
func TestSignatureDataIsStoredAsAnObject(t *testing.T) {
	e := newEnv(t)
	sig := e.startSignature(t, testOptions{})
	doc := e.createDocument(t, "Images", "x")
	img := image.NewGray(image.Rect(0, 0, 4, 2))
	img.Set(1, 1, color.White)
	var pngBytes bytes.Buffer
	if err := png.Encode(&pngBytes, img); err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(pngBytes.Bytes())
	cases := []struct {
		name, data, wantType string
		wantBody             []byte
	}{
		{"base64 PNG", b64, "image/png", pngBytes.Bytes()},
		{"PNG data URL", "data:image/png;base64," + b64, "image/png", pngBytes.Bytes()},
		{"text that is not base64", "base64encoded_signature_image_data_here", "text/plain; charset=utf-8", []byte("base64encoded_signature_image_data_here")},
		{"base64 of text, not an image", base64.StdEncoding.EncodeToString([]byte("hello")), "text/plain; charset=utf-8", []byte(base64.StdEncoding.EncodeToString([]byte("hello")))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, got := sig.sign(t, map[string]any{"document_id": doc.ID, "signer_email": "a@b.co", "signer_name": "A", "signature_data": c.data})
			if resp.StatusCode != 201 {
				t.Fatalf("status %d: %s", resp.StatusCode, readBody(resp))
			}
			if got.SignatureData == nil || *got.SignatureData != c.data {
				t.Errorf("signature_data is not echoed as given")
			}
			if got.SignatureKey == nil || *got.SignatureKey != got.ID {
				t.Fatalf("signature_key = %v, want the signature id %s", got.SignatureKey, got.ID)
			}
			ctx := context.Background()
			attrs, err := e.sigs.Attributes(ctx, got.ID)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := e.sigs.ReadAll(ctx, got.ID)
			if err != nil {
				t.Fatal(err)
			}
			if attrs.ContentType != c.wantType || !bytes.Equal(stored, c.wantBody) {
				t.Fatalf("stored %q (%d bytes), want %q (%d bytes)", attrs.ContentType, len(stored), c.wantType, len(c.wantBody))
			}
			if got.SignatureContentType == nil || *got.SignatureContentType != c.wantType || got.SignatureSize == nil || *got.SignatureSize != int64(len(c.wantBody)) {
				t.Errorf("response says %v / %v", got.SignatureContentType, got.SignatureSize)
			}
		})
	}
	t.Run("no signature_data: no object", func(t *testing.T) {
		_, got := sig.sign(t, map[string]any{"document_id": doc.ID, "signer_email": "a@b.co", "signer_name": "A"})
		if got.SignatureData != nil || got.SignatureKey != nil {
			t.Fatalf("signature_data %v key %v, want null", got.SignatureData, got.SignatureKey)
		}
		if ok, err := e.sigs.Exists(context.Background(), got.ID); err != nil || ok {
			t.Fatalf("object exists=%v err=%v", ok, err)
		}
	})
}

func TestHealthEndpoints(t *testing.T) {
	e := newEnv(t)
	sig := e.startSignature(t, testOptions{noRecon: true})
	for _, p := range []string{"/health/live", "/health/ready", "/metrics"} {
		if r := testenv.Do(t, "GET", sig.url+p, nil, nil); r.StatusCode != 200 {
			t.Errorf("%s: %d", p, r.StatusCode)
		}
	}
}

func readBody(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}
