package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json from the values in this test")

func ptr[T any](v T) *T { return &v }

var webhookGolden = api.Webhook{ID: "06946690-1d00-7000-8000-1a2b3c4d5e6f", URL: "https://crm.example.com/hooks/docstream",
	Events: []string{"document.created", "document.signed"}, Description: "CRM sync", DocumentID: docID, CreatedBy: "ebemad@company.com",
	Enabled: false, DisabledReason: "every delivery attempt failed since 2025-11-20T01:47:02Z; last: the endpoint answered 503",
	Owner: "user:ebemad", FailingSince: &signed, PreviousSecretUntil: &signed, CreatedAt: created, UpdatedAt: signed}
var signingRecipient = api.Recipient{
	ID: "06946681-9000-7000-8000-000000000002", Email: "ebemad@client.com", Name: "Ebrahim Emad",
	Role: api.RoleSigner, Order: 1, State: api.RecipientSigned, NotifiedAt: &created, ViewedAt: &signed, ActedAt: &signed,
	IPAddress: ptr("127.0.0.1"), UserAgent: ptr("Mozilla/5.0"), ConsentAt: &signed,
	SignatureID: ptr("06946681-7a00-7000-8000-5b6c1f0e9a21"), DeclineReason: ptr("n/a"),
}

const listSortMessage = `must be one of -created_at, created_at, -updated_at, updated_at, title, -title ("-" first: descending)`

var (
	created = time.Date(2025, 11, 20, 1, 46, 31, 657647000, time.UTC)
	signed  = time.Date(2025, 11, 20, 1, 47, 2, 120003000, time.UTC)
	docID   = "06946681-6080-71f1-8000-e0ba48255d59"
)

// Golden is every response shape of the API with a value whose every
// field is set. Each is encoded and compared with testdata/<name>.json, and
// the file is decoded (unknown fields refused) and compared with the
// value: a renamed or dropped JSON tag fails here even though it compiles.
// The files are written from the reference contract (the reference's
// fields first, then docstream's additive ones); -update rewrites them
// after a deliberate change.
var golden = map[string]any{
	"document": api.Document{
		ID: docID, Title: "Sales Agreement Q4 2025", ContentType: "text/plain", ContentSize: 36,
		S3Key: docID + "/content", Status: api.StatusCreated, CreatedBy: "ebemad@company.com",
		CreatedAt: api.Time{Time: created}, UpdatedAt: api.Time{Time: created}, Version: 1,
		ContentSHA256: "9c1185a5c5e9fc54612808977ee8f548b2258d31b3b6e8e5a9b0f7cbd0e5c3b1",
		Owner:         "user:ebemad", SigningStatus: api.RequestDeclined,
	},
	"audit_log": api.AuditLog{DocumentID: docID,
		Entries: []*api.AuditEntry{{DocumentID: docID, Seq: 1, Type: "document.created", Actor: "user:ebemad",
			At: "2025-11-20T01:46:31.657647Z", IP: "127.0.0.1", UserAgent: "curl/8.5.0", Data: json.RawMessage(`{}`), // indented JSON would not read back byte for byte
			PrevHash: "0000000000000000000000000000000000000000000000000000000000000000", KeyID: "4f1c2a9e0b7d3c55",
			Hash: "5d41402abc4b2a76b9719d911017c592ae5d3f1e2b0c9a8d7e6f5a4b3c2d1e0f"}},
		Head: &api.AuditCheckpoint{DocumentID: docID, Seq: 1, Hash: "5d41402abc4b2a76b9719d911017c592ae5d3f1e2b0c9a8d7e6f5a4b3c2d1e0f",
			KeyID: "4f1c2a9e0b7d3c55", SignedAt: "2025-11-20T01:46:31.657647Z", Signature: "c2lnbmF0dXJl"},
		Checkpoints: []api.AuditCheckpoint{{DocumentID: docID, Seq: 1, Hash: "5d41402abc4b2a76b9719d911017c592ae5d3f1e2b0c9a8d7e6f5a4b3c2d1e0f",
			KeyID: "4f1c2a9e0b7d3c55", SignedAt: "2025-11-20T01:47:02.120003Z", Signature: "c2lnbmF0dXJl"}}},
	"audit_verification": api.AuditVerification{Valid: false, DocumentID: docID,
		FirstBroken: &api.AuditBroken{Seq: 2, Type: "signature.created", At: "2025-11-20T01:47:02.120003Z", Reason: "changed: its content does not match its hash"},
		Reason:      "entry 2: changed: its content does not match its hash", Entries: 3,
		Head:   &api.AuditCheckpoint{DocumentID: docID, Seq: 3, Hash: "5d41402abc4b2a76b9719d911017c592ae5d3f1e2b0c9a8d7e6f5a4b3c2d1e0f", KeyID: "4f1c2a9e0b7d3c55", SignedAt: "2025-11-20T01:47:02.120003Z", Signature: "c2lnbmF0dXJl"},
		Signed: true, HistoryUnknownBefore: "2025-11-20T01:46:31.657647Z", Notes: []string{"history before 2025-11-20T01:46:31.657647Z unknown: the trail began after the document"}},
	"audit_keys": api.AuditKeySet{Keys: []api.AuditKey{{KeyID: "4f1c2a9e0b7d3c55", Algorithm: "Ed25519", PublicKey: "Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="}}},
	"share": api.Share{DocumentID: docID, Grantee: "email:ebemad@client.com", Level: "sign",
		CreatedBy: "user:ebemad", CreatedAt: signed},
	"signing_request": api.SigningRequest{
		ID: "06946681-9000-7000-8000-000000000001", DocumentID: docID, Owner: ptr("user:ebemad"),
		CreatedBy: "ebemad@company.com", State: api.RequestCompleted, Message: ptr("Please sign the agreement"),
		ContentSHA256:   "9c1185a5c5e9fc54612808977ee8f548b2258d31b3b6e8e5a9b0f7cbd0e5c3b1",
		DocumentVersion: 1, ExpiresAt: &signed, ReminderInterval: ptr("24h0m0s"), Outcome: ptr("completed"),
		CertificateSHA256: ptr("0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"),
		CreatedAt:         created, UpdatedAt: signed, SentAt: &created, CompletedAt: &signed,
		Recipients: []api.Recipient{signingRecipient},
	},
	"invitation": api.Invitation{
		RequestID: "06946681-9000-7000-8000-000000000001", DocumentID: docID, DocumentTitle: "Sales Agreement Q4 2025",
		ContentSHA256: "9c1185a5c5e9fc54612808977ee8f548b2258d31b3b6e8e5a9b0f7cbd0e5c3b1", ContentType: "text/plain",
		Message: ptr("Please sign the agreement"), From: "ebemad@company.com", Recipient: signingRecipient,
		RequestState: api.RequestInProgress, ExpiresAt: &signed, CanAct: true, State: api.RecipientSigned,
	},
	"document_stats": api.DocumentStats{DocumentID: docID, TotalViews: 3, UniqueViews: 2},
	"signature": api.Signature{
		ID: "06946681-7a00-7000-8000-5b6c1f0e9a21", DocumentID: docID,
		SignerEmail: "ebemad@client.com", SignerName: "Ebrahim Emad", SignerSubject: ptr("user:ebemad"), SignedAt: signed,
		SignatureData: ptr("base64encoded_signature_image_data_here"), IPAddress: ptr("127.0.0.1"),
		DocumentVersion: ptr(int32(1)), ContentSHA256: ptr("9c1185a5c5e9fc54612808977ee8f548b2258d31b3b6e8e5a9b0f7cbd0e5c3b1"),
		SignatureKey: ptr("06946681-7a00-7000-8000-5b6c1f0e9a21"), SignatureContentType: ptr("text/plain; charset=utf-8"),
		SignatureSize: ptr(int64(39)), DocumentStatusUpdate: api.UpdateFailed,
		DocumentStatusError: "illegal status transition from cancelled to signed",
	},
	"search_response": api.SearchResponse{
		Total: 1, TotalRelation: api.TotalEqual, TookMs: 3, From: 0, Size: 10, Stale: true,
		Documents: []api.SearchHit{{
			ID: docID, Title: "Sales Agreement Q4 2025", ContentType: "text/plain", ContentSize: 36,
			S3Key: docID + "/content", Status: api.StatusSigned, CreatedBy: "ebemad@company.com",
			CreatedAt: &created, UpdatedAt: &signed, Version: 2, SigningStatus: api.RequestCompleted, Score: 1.2876821,
			Highlights: map[string][]string{"title": {"<mark>Sales</mark> Agreement Q4 2025"}},
		}},
	},
	"suggest_response": api.SuggestResponse{Suggestions: []string{"Sales Agreement Q4 2025"}, Stale: true},
	"aggregation_response": api.AggregationResponse{
		Field: api.AggregateStatus, Stale: true,
		Values: []api.Bucket{{Key: "signed", Count: 2}, {Key: "created", Count: 1}},
	},
	"token": api.Token{
		AccessToken: "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl", TokenType: "bearer",
		UserID: "user-1", Email: "user@company.com", ExpiresAt: created.Add(24 * time.Hour),
	},
	"realtime_stats": api.RealtimeStats{
		TotalConnections: 3, DocumentsWithSubscribers: 1, Replaying: 1, Documents: map[string]int{docID: 2}, ListSubscribers: 1,
		Consumer: api.ConsumerStats{
			Topics: []string{"cdc.documents", "cdc.signatures"}, State: "running", Position: 42, LSN: 23842352,
			Events: 42, EventsByTopic: map[string]uint64{"cdc.documents": 30, "cdc.signatures": 12},
			LastEventAt: &signed, Error: "retrying: nats: timeout",
		},
	},
	"ops": api.Ops{
		GeneratedAt: signed,
		CDC: api.OpsCDC{Slot: "docstream", Active: ptr(true), ConfirmedLSN: ptr(uint64(23842352)), SlotLagBytes: ptr(0.0),
			RetainedWALBytes: ptr(16384.0), EventsPublished: ptr(42.0)},
		Bus: api.OpsBus{Position: ptr(uint64(42)), LSN: ptr(uint64(23842352)), LastEventAt: &signed,
			Consumers: map[string]api.OpsConsumer{"indexer": {Pending: 3, AckPending: 1, Stalled: true}}},
		Indexer:  api.OpsIndexer{AppliedLSN: ptr(uint64(23842000)), LagBytes: ptr(uint64(352)), Pending: ptr(3.0)},
		Realtime: api.OpsRealtime{Connections: ptr(3), ListSubscribers: ptr(1), Documents: ptr(1)},
		Services: []api.OpsService{{Name: "document", URL: "http://127.0.0.1:8001", Ready: "degraded",
			Checks: map[string]api.CheckResult{"redis": {Status: "down", Error: "dial tcp 127.0.0.1:6379: connection refused"}},
			Error:  "GET http://127.0.0.1:8001/metrics: context deadline exceeded", Requests: ptr(120.0), Errors: ptr(2.0),
			RequestsPerSecond: ptr(4.5), ErrorsPerSecond: ptr(0.1), InFlight: ptr(1.0), ConnectionsOpen: ptr(5.0)}},
	},
	"gateway_status": api.GatewayStatus{Status: "ok", StartedAt: created, UptimeSeconds: 3600,
		Services:  map[string]api.UpstreamCount{"document": {Upstreams: 2, Available: 1}, "search": {Upstreams: 1, Available: 1}},
		RateLimit: api.RateLimit{Requests: 100, WindowSeconds: 60}, MaxBodyBytes: 104857600},
	"gateway_routes": api.GatewayRoutes{Routes: []api.GatewayRoute{
		{Route: "documents", Service: "document", Pattern: "/documents"},
		{Route: "signatures", Service: "signature", Pattern: "/documents/{id}/signatures"},
	}},
	"gateway_upstreams": api.GatewayUpstreams{Services: []api.ServiceUpstreams{{
		Name: "document", Balance: "round_robin", HealthCheck: "/health/ready every 5s",
		Upstreams: []api.Upstream{{URL: "http://127.0.0.1:8005", Available: false, Healthy: true, EjectedUntil: &signed,
			InFlight: 3, LastCheck: &created, LastCheckErr: "GET /health/ready: context deadline exceeded",
			LastProxyErr: "dial tcp 127.0.0.1:8005: connect: connection refused", TotalRequests: 1200, TotalFailures: 3}},
	}}},
	"api_key_created": api.CreatedAPIKey{
		APIKey: api.APIKey{ID: "5f0c3e9a1b2d4c6e", Name: "ci-uploader", Scopes: []string{"read", "write"}, CreatedBy: "user:admin-1",
			CreatedAt: created, ExpiresAt: &signed},
		Key: "dsk_5f0c3e9a1b2d4c6e_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
	},
	"api_keys": api.APIKeys{Keys: []api.APIKey{
		{ID: "5f0c3e9a1b2d4c6e", Name: "ci-uploader", Scopes: []string{"read", "write"}, CreatedBy: "user:admin-1",
			CreatedAt: created, ExpiresAt: &signed, LastUsedAt: &signed, RevokedAt: &signed},
	}},
	"extraction": api.Extraction{DocumentID: docID, ContentSHA256: "9c1185a5c5e9fc54612808977ee8f548b2258d31b3b6e8e5a9b0f7cbd0e5c3b1",
		Status: api.ExtractionDone, Format: "pdf", Kind: "pdf", Pages: 12, Language: "eng", TextSize: 48211, Truncated: true,
		Thumbnail: true, OCR: true, DurationMs: 1830, Reason: "", Error: "only the first 500 of 612 pages were read (page cap)",
		Attempts: 1, RequestedAt: api.Time{Time: created}, ExtractedAt: &api.Time{Time: signed}},
	"extract_response": api.ExtractResponse{Queued: 12, Pending: 15},
	"webhook":          webhookGolden,
	"webhook_created":  api.CreatedWebhook{Webhook: webhookGolden, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
	"webhooks":         api.Webhooks{Webhooks: []api.Webhook{webhookGolden}},
	"deliveries": api.Deliveries{Deliveries: []api.Delivery{{ID: "42", WebhookID: "msg_p5jxn3eh7tnvz5y2mq4ek3kvsvx4nu5a", Type: "document.signed",
		DocumentID: docID, Status: api.DeliveryPending, Attempts: 2, NextAttemptAt: &signed, LastStatus: 503, LastError: "the endpoint answered 503",
		CreatedAt: created, FinishedAt: &signed, History: []api.DeliveryAttempt{{At: signed, StatusCode: 503, DurationMS: 12, Error: "the endpoint answered 503", Response: "busy"}}}}},
	"queued": api.Queued{Queued: 3},
	"webhook_payload": api.WebhookPayload{Type: "signature.created", Timestamp: signed, LSN: 24023128,
		Data: api.WebhookData{Document: &api.Document{ID: docID, Title: "Sales Agreement Q4 2025", Status: api.StatusSigned,
			CreatedAt: api.Time{Time: created}, UpdatedAt: api.Time{Time: signed}, Version: 2},
			Signature: &api.Signature{ID: "06946681-7a00-7000-8000-5b6c1f0e9a21", DocumentID: docID, SignerEmail: "ebemad@client.com", SignerName: "Ebrahim Emad", SignedAt: signed},
			Test:      &api.WebhookTestData{Message: "a test event from docstream"}}},
	"extraction_queue": api.ExtractionQueue{Pending: 3, Running: 2, ByState: map[string]int64{"pending": 3, "running": 2, "done": 40, "failed": 1}},
	"health_live":      api.Health{Status: "ok"},
	"health_ready": api.Health{Status: "degraded", Checks: map[string]api.CheckResult{
		"postgres": {Status: "ok"}, "redis": {Status: "down", Error: "dial tcp 127.0.0.1:6379: connect: connection refused"},
	}},
	"error": apperr.Body{Error: apperr.Error{
		Code: apperr.Validation, Message: "created_by: is required (and 1 more)",
		Details: []apperr.FieldError{{Field: "created_by", Message: "is required"}, {Field: "content", Message: "is required"}},
	}},
	// GET /documents?sort=bogus, as the document service answers it
	// (internal/document's TestListBadSortMatchesTheGoldenError compares).
	"error_list_sort": apperr.Body{Error: apperr.Error{
		Code: apperr.Validation, Message: "sort: " + listSortMessage,
		Details: []apperr.FieldError{{Field: "sort", Message: listSortMessage}},
	}},
	"message_document_created": api.Message{Type: api.TypeDocumentCreated, Timestamp: "2025-11-20T01:46:31.657000Z", LSN: 23842352,
		Data: api.DocumentData{DocumentID: docID, Title: "Sales Agreement Q4 2025", Status: "created", CreatedBy: "ebemad@company.com",
			ContentType: ptr("text/plain"), ContentSize: ptr(int64(36)), Version: ptr(int32(1)),
			CreatedAt: ptr("2025-11-20T01:46:31.657647Z"), UpdatedAt: ptr("2025-11-20T01:46:31.657647Z")}},
	"message_document_signed": api.Message{Type: api.TypeDocumentSigned, Timestamp: "2025-11-20T01:47:02.120000Z", LSN: 23842901,
		Data: api.StatusData{DocumentID: docID, Title: "Sales Agreement Q4 2025", OldStatus: "pending", NewStatus: "signed",
			Version: ptr(int32(3)), UpdatedAt: ptr("2025-11-20T01:47:02.120003Z")}},
	"message_document_updated": api.Message{Type: api.TypeDocumentUpdated, Timestamp: "2025-11-20T01:47:10.001000Z", LSN: 23843000,
		Data: api.UpdatedData{DocumentID: docID, Title: "Sales Agreement Q1 2026", OldTitle: "Sales Agreement Q4 2025",
			Version: ptr(int32(4)), UpdatedAt: ptr("2025-11-20T01:47:10.001234Z"), Changed: []string{"title"},
			SigningStatus: "completed"}},
	"message_signature_added": api.Message{Type: api.TypeSignatureAdded, Timestamp: "2025-11-20T01:47:02.118000Z", LSN: 23842901,
		Data: api.SignatureData{SignatureID: "06946681-7a00-7000-8000-5b6c1f0e9a21", DocumentID: docID,
			SignerName: "Ebrahim Emad", SignerEmail: "ebemad@client.com", SignedAt: ptr("2025-11-20T01:47:02.120003Z")}},
	"message_signing_request_sent": api.Message{Type: api.TypeSigningRequestSent, Timestamp: "2025-11-20T01:48:00.100000Z", LSN: 23843100,
		Data: api.SigningRequestData{RequestID: "06946690-0000-7000-8000-00000000000a", DocumentID: docID, OldState: "draft", State: "sent",
			CreatedBy: "ebemad@company.com", ContentSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			ExpiresAt: ptr("2025-12-20T00:00:00.000000Z"), UpdatedAt: ptr("2025-11-20T01:48:00.100123Z")}},
	"message_recipient_signed": api.Message{Type: api.TypeRecipientSigned, Timestamp: "2025-11-20T01:49:00.200000Z", LSN: 23843200,
		Data: api.RecipientData{RecipientID: "06946690-0100-7000-8000-00000000000b", RequestID: "06946690-0000-7000-8000-00000000000a",
			DocumentID: docID, Email: "ebemad@client.com", Name: "Ebrahim Emad", Role: "signer", Order: 1, OldState: "viewed", State: "signed",
			At: ptr("2025-11-20T01:49:00.200456Z")}},
}

func TestGoldenJSON(t *testing.T) {
	for name, v := range golden {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name+".json")
			got, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%T encodes differently from %s (a JSON tag changed?)\ngot:\n%s\nwant:\n%s", v, path, got, want)
			}
			back := reflect.New(reflect.TypeOf(v))
			dec := json.NewDecoder(bytes.NewReader(want))
			dec.DisallowUnknownFields()
			if err := dec.Decode(back.Interface()); err != nil {
				t.Fatalf("%s does not decode into %T: %v", path, v, err)
			}
			if !reflect.DeepEqual(back.Elem().Interface(), v) {
				t.Fatalf("%s decodes into\n%#v\nwant\n%#v", path, back.Elem().Interface(), v)
			}
		})
	}
}

// The reference system's response fields must stay in each shape, whatever
// is added.
func TestGoldenHoldsTheReferenceFields(t *testing.T) {
	reference := map[string][]string{
		"document":                 {"id", "title", "content_type", "content_size", "s3_key", "status", "created_by", "created_at", "updated_at", "version"},
		"document_stats":           {"document_id", "total_views", "unique_views"},
		"signature":                {"id", "document_id", "signer_email", "signer_name", "signed_at", "signature_data", "ip_address"},
		"search_response":          {"total", "documents", "took_ms", "from", "size"},
		"suggest_response":         {"suggestions"},
		"aggregation_response":     {"field", "values"},
		"token":                    {"access_token", "token_type", "user_id", "email"},
		"error":                    {"error"},
		"message_document_created": {"type", "data", "timestamp"},
	}
	for name, fields := range reference {
		raw, err := os.ReadFile(filepath.Join("testdata", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		for _, f := range fields {
			if _, ok := m[f]; !ok {
				t.Errorf("%s.json lacks the reference field %q", name, f)
			}
		}
	}
}

// Time is sent with exactly six fractional digits, as the CDC events.
func TestTimeHasMicroseconds(t *testing.T) {
	b, err := json.Marshal(api.Time{Time: time.Date(2025, 11, 20, 1, 46, 31, 0, time.FixedZone("CET", 3600))})
	if err != nil || string(b) != `"2025-11-20T00:46:31.000000Z"` {
		t.Fatalf("%s %v", b, err)
	}
}

// A message of a type this version does not know keeps its data raw.
func TestMessageOfUnknownTypeKeepsRawData(t *testing.T) {
	var m api.Message
	if err := json.Unmarshal([]byte(`{"type":"document.shared","data":{"to":"x"},"timestamp":"t","lsn":7}`), &m); err != nil {
		t.Fatal(err)
	}
	if raw, ok := m.Data.(json.RawMessage); !ok || string(raw) != `{"to":"x"}` || m.LSN != 7 {
		t.Fatalf("%#v", m)
	}
}
