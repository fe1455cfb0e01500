package client_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/client"
	"github.com/docstream/docstream/internal/apikey"
	"github.com/docstream/docstream/internal/document"
	"github.com/docstream/docstream/internal/extractor"
	"github.com/docstream/docstream/internal/gateway"
	"github.com/docstream/docstream/internal/ops"
	"github.com/docstream/docstream/internal/realtime"
	"github.com/docstream/docstream/internal/search"
	"github.com/docstream/docstream/internal/signature"
	"github.com/docstream/docstream/internal/webhooks"
)

// healthRoutes are registered on every service by httpx.Routes. /metrics
// is for Prometheus, not a call of the API, and has no client method.
var healthRoutes = []string{"GET /health/live", "GET /health/ready"}

// fixture is the answer each route's fake gives: a golden response of the
// api package, so that the client also decodes every shape.
var fixture = map[string]string{
	"POST /documents":                         "document",
	"GET /documents":                          "[document]",
	"GET /documents/{id}":                     "document",
	"PATCH /documents/{id}":                   "document",
	"DELETE /documents/{id}":                  "",
	"GET /documents/{id}/content":             "",
	"GET /documents/{id}/stats":               "document_stats",
	"GET /documents/{id}/extraction":          "extraction",
	"POST /documents/{id}/extract":            "extraction",
	"GET /documents/{id}/thumbnail":           "",
	"POST /extractions/rerun":                 "extract_response",
	"GET /extractions/queue":                  "extraction_queue",
	"GET /documents/{id}/shares":              "[share]",
	"POST /documents/{id}/shares":             "share",
	"DELETE /documents/{id}/shares/{grantee}": "",
	"POST /signatures":                        "signature",
	"GET /signatures":                         "[signature]",
	"GET /signatures/{id}":                    "signature",
	"GET /documents/{id}/signatures":          "[signature]",
	"GET /search":                             "search_response",
	"GET /suggest":                            "suggest_response",
	"GET /aggregations/{field}":               "aggregation_response",
	"GET /stats":                              "realtime_stats",
	"GET /auth/token":                         "token",
	"GET /ws/{document_id}":                   "",
	"GET /ws":                                 "",
	"GET /ops":                                "ops",
	"GET /health/live":                        "health_live",
	"GET /health/ready":                       "health_ready",
	"GET /status":                             "gateway_status",
	"GET /routes":                             "gateway_routes",
	"GET /upstreams":                          "gateway_upstreams",
	"POST /apikeys":                           "api_key_created",
	"GET /apikeys":                            "api_keys",
	"DELETE /apikeys/{id}":                    "",
	"POST /webhooks":                          "webhook_created",
	"GET /webhooks":                           "webhooks",
	"GET /webhooks/{id}":                      "webhook",
	"PATCH /webhooks/{id}":                    "webhook",
	"DELETE /webhooks/{id}":                   "",
	"POST /webhooks/{id}/rotate":              "webhook_created",
	"GET /webhooks/{id}/deliveries":           "deliveries",
	"POST /webhooks/{id}/deliveries/{delivery}/redeliver": "queued",
	"POST /webhooks/{id}/replay":                          "queued",
	"POST /webhooks/{id}/test":                            "queued",
	"GET /documents/{id}/audit":                           "audit_log",
	"GET /documents/{id}/audit/verify":                    "audit_verification",
	"GET /.well-known/docstream-audit-keys":               "audit_keys",

	"POST /documents/{id}/signing-requests":   "signing_request",
	"GET /documents/{id}/signing-requests":    "[signing_request]",
	"GET /signing-requests/{rid}":             "signing_request",
	"POST /signing-requests/{rid}/send":       "signing_request",
	"POST /signing-requests/{rid}/cancel":     "signing_request",
	"POST /signing-requests/{rid}/resend":     "signing_request",
	"GET /signing-requests/{rid}/certificate": "",
	"GET /signing-requests/{rid}/invitation":  "invitation",
	"POST /signing-requests/{rid}/{action}":   "invitation",
	"GET /invitations/{token}":                "invitation",
	"GET /invitations/{token}/content":        "",
	"POST /invitations/{token}/{action}":      "invitation",
}

// TestEveryRouteHasAClientMethod serves every route the services and the
// gateway's admin API register (their Routes lists, which their muxes are
// built from) on one fake
// server, calls every exported method of *client.Client, and fails if a
// route was never called — a route added to a service without a client
// method — or if a method was left out of the table below.
func TestEveryRouteHasAClientMethod(t *testing.T) {
	var routes []string
	for _, rs := range [][]string{document.Routes(), apikey.Routes(), extractor.Routes(), signature.Routes(), search.Routes(), realtime.Routes(), webhooks.Routes(), gateway.AdminRoutes(), ops.Routes(), healthRoutes} {
		for _, r := range rs {
			if !slices.Contains(routes, r) {
				routes = append(routes, r)
			}
		}
	}

	var mu sync.Mutex
	hit := map[string]bool{}
	mux := http.NewServeMux()
	for _, pattern := range routes {
		name, ok := fixture[pattern]
		if !ok {
			t.Errorf("route %q has no fixture here: add one, and a client method", pattern)
			continue
		}
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hit[r.Pattern] = true
			mu.Unlock()
			_, _ = io.Copy(io.Discard, r.Body)
			switch pattern {
			case "GET /ws/{document_id}", "GET /ws":
				c, err := websocket.Accept(w, r, nil)
				if err != nil {
					return
				}
				_ = c.Write(r.Context(), websocket.MessageText, readGolden(t, "message_document_signed"))
				c.Close(websocket.StatusNormalClosure, "done")
			case "DELETE /documents/{id}", "DELETE /documents/{id}/shares/{grantee}", "DELETE /apikeys/{id}", "DELETE /webhooks/{id}":
				w.WriteHeader(http.StatusNoContent)
			case "GET /documents/{id}/thumbnail":
				w.Header().Set("Content-Type", "image/png")
				w.Header().Set("ETag", `"abc"`)
				http.ServeContent(w, r, "", testTime, strings.NewReader("\x89PNG"))
			case "GET /signing-requests/{rid}/certificate", "GET /invitations/{token}/content":
				w.Header().Set("Content-Type", "application/pdf")
				_, _ = w.Write([]byte("%PDF-1.4"))
			case "GET /documents/{id}/content":
				w.Header().Set("Content-Type", "text/plain")
				http.ServeContent(w, r, "", testTime, strings.NewReader("0123456789"))
			default:
				w.Header().Set("Content-Type", "application/json")
				body := readGolden(t, strings.Trim(name, "[]"))
				if strings.HasPrefix(name, "[") {
					body = append(append([]byte("["), body...), ']')
				}
				_, _ = w.Write(body)
			}
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := "06946681-6080-71f1-8000-e0ba48255d59"

	calls := map[string]func() error{
		"CreateDocument": func() error {
			_, err := c.CreateDocument(ctx, api.CreateDocumentRequest{Title: "t", Content: "c", CreatedBy: "a@b.co"})
			return err
		},
		"UploadDocument": func() error {
			_, err := c.UploadDocument(ctx, client.Upload{Title: "t", CreatedBy: "a@b.co", Content: strings.NewReader("c")})
			return err
		},
		"GetDocument":   func() error { _, err := c.GetDocument(ctx, id); return err },
		"ListDocuments": func() error { _, err := c.ListDocuments(ctx, api.ListOptions{}); return err },
		"ListDocumentsPage": func() error {
			_, err := c.ListDocumentsPage(ctx, api.ListDocumentsRequest{Status: api.StatusSigned})
			return err
		},
		"UpdateDocument": func() error {
			_, err := c.UpdateDocument(ctx, id, api.UpdateDocumentRequest{Title: "u"})
			return err
		},
		"UpdateDocumentIfVersion": func() error {
			_, err := c.UpdateDocumentIfVersion(ctx, id, 1, api.UpdateDocumentRequest{Title: "u"})
			return err
		},
		"DeleteDocument":  func() error { return c.DeleteDocument(ctx, id) },
		"DocumentStats":   func() error { _, err := c.DocumentStats(ctx, id); return err },
		"DocumentContent": func() error { return drain(c.DocumentContent(ctx, id)) },
		"DocumentContentRange": func() error {
			return drain(c.DocumentContentRange(ctx, id, 2, 4))
		},
		"DocumentShares": func() error { _, err := c.DocumentShares(ctx, id); return err },
		"ShareDocument": func() error {
			_, _, err := c.ShareDocument(ctx, id, api.ShareRequest{Grantee: "user:bob", Level: "view"})
			return err
		},
		"UnshareDocument": func() error { _, err := c.UnshareDocument(ctx, id, "user:bob"); return err },
		"CreateSignature": func() error {
			_, err := c.CreateSignature(ctx, api.CreateSignatureRequest{DocumentID: id, SignerEmail: "a@b.co", SignerName: "A"})
			return err
		},
		"GetSignature":       func() error { _, err := c.GetSignature(ctx, id); return err },
		"ListSignatures":     func() error { _, err := c.ListSignatures(ctx, api.ListOptions{Limit: 5}); return err },
		"DocumentSignatures": func() error { _, err := c.DocumentSignatures(ctx, id); return err },
		"CreateSigningRequest": func() error {
			_, err := c.CreateSigningRequest(ctx, id, api.CreateSigningRequest{Recipients: []api.RecipientInput{{Email: "a@b.co", Role: api.RoleSigner}}})
			return err
		},
		"DocumentSigningRequests": func() error { _, err := c.DocumentSigningRequests(ctx, id); return err },
		"GetSigningRequest":       func() error { _, err := c.GetSigningRequest(ctx, id); return err },
		"SendSigningRequest":      func() error { _, err := c.SendSigningRequest(ctx, id); return err },
		"CancelSigningRequest":    func() error { _, err := c.CancelSigningRequest(ctx, id); return err },
		"ResendSigningRequest":    func() error { _, err := c.ResendSigningRequest(ctx, id); return err },
		"SigningCertificate":      func() error { return drain(c.SigningCertificate(ctx, id)) },
		"SigningInvitation":       func() error { _, err := c.SigningInvitation(ctx, id); return err },
		"ActOnSigningRequest": func() error {
			_, err := c.ActOnSigningRequest(ctx, id, "sign", api.InvitationAction{Consent: true})
			return err
		},
		"ViewInvitation":    func() error { _, err := c.ViewInvitation(ctx, "tok"); return err },
		"InvitationContent": func() error { return drain(c.InvitationContent(ctx, "tok")) },
		"ActOnInvitation": func() error {
			_, err := c.ActOnInvitation(ctx, "tok", "approve", api.InvitationAction{Consent: true})
			return err
		},
		"Search":  func() error { _, err := c.Search(ctx, api.SearchRequest{Query: "q"}); return err },
		"Suggest": func() error { _, err := c.Suggest(ctx, api.SuggestRequest{Query: "qq"}); return err },
		"Aggregate": func() error {
			_, err := c.Aggregate(ctx, api.AggregationRequest{Field: api.AggregateStatus})
			return err
		},
		"DevToken": func() error { _, err := c.DevToken(ctx, "u", ""); return err },
		"DevTokenWith": func() error {
			_, err := c.DevTokenWith(ctx, "u", "", client.DevTokenOptions{Groups: []string{"g"}, Admin: true})
			return err
		},
		"RealtimeStats": func() error { _, err := c.RealtimeStats(ctx); return err },
		"CreateWebhook": func() error {
			_, err := c.CreateWebhook(ctx, api.CreateWebhookRequest{URL: "https://a.example/", Events: []string{"document.created"}})
			return err
		},
		"ListWebhooks": func() error { _, err := c.ListWebhooks(ctx); return err },
		"GetWebhook":   func() error { _, err := c.GetWebhook(ctx, id); return err },
		"UpdateWebhook": func() error {
			on := true
			_, err := c.UpdateWebhook(ctx, id, api.UpdateWebhookRequest{Enabled: &on})
			return err
		},
		"DeleteWebhook":       func() error { return c.DeleteWebhook(ctx, id) },
		"RotateWebhookSecret": func() error { _, err := c.RotateWebhookSecret(ctx, id, "1h"); return err },
		"WebhookDeliveries":   func() error { _, err := c.WebhookDeliveries(ctx, id, "failed", 10); return err },
		"RedeliverWebhook":    func() error { return c.RedeliverWebhook(ctx, id, "42") },
		"ReplayWebhook":       func() error { _, err := c.ReplayWebhook(ctx, id, api.ReplayRequest{FromLSN: 1}); return err },
		"TestWebhook":         func() error { return c.TestWebhook(ctx, id) },
		"DocumentAudit":       func() error { _, err := c.DocumentAudit(ctx, id); return err },
		"VerifyDocumentAudit": func() error { _, err := c.VerifyDocumentAudit(ctx, id); return err },
		"AuditKeys":           func() error { _, err := c.AuditKeys(ctx); return err },
		"Watch": func() error {
			w, err := c.Watch(ctx, id, client.WatchOptions{Token: "t"})
			if err != nil {
				return err
			}
			defer w.Close()
			_, err = w.Next(ctx)
			return err
		},
		"WatchList": func() error {
			w, err := c.WatchList(ctx, client.WatchOptions{Token: "t"})
			if err != nil {
				return err
			}
			defer w.Close()
			_, err = w.Next(ctx)
			return err
		},
		"DocumentExtraction": func() error { _, err := c.DocumentExtraction(ctx, id); return err },
		"WaitExtraction": func() error {
			e, err := c.WaitExtraction(ctx, id, time.Millisecond)
			if err == nil && e.Status != api.ExtractionDone {
				err = fmt.Errorf("status %q", e.Status)
			}
			return err
		},
		"ExtractDocument": func() error { _, err := c.ExtractDocument(ctx, id); return err },
		"RerunExtractions": func() error {
			_, err := c.RerunExtractions(ctx, api.ExtractRequest{Failed: true})
			return err
		},
		"ExtractionQueue": func() error { _, err := c.ExtractionQueue(ctx); return err },
		"DocumentThumbnail": func() error {
			th, err := c.DocumentThumbnail(ctx, id, "")
			if err != nil {
				return err
			}
			defer th.Close()
			if th.ETag != `"abc"` || th.ContentType != "image/png" {
				return fmt.Errorf("thumbnail %+v", th)
			}
			again, err := c.DocumentThumbnail(ctx, id, th.ETag)
			if err != nil {
				return err
			}
			again.Close()
			if !again.NotModified {
				return fmt.Errorf("If-None-Match did not give NotModified")
			}
			return nil
		},
		"GatewayStatus":    func() error { _, err := c.GatewayStatus(ctx); return err },
		"GatewayRoutes":    func() error { _, err := c.GatewayRoutes(ctx); return err },
		"GatewayUpstreams": func() error { _, err := c.GatewayUpstreams(ctx); return err },
		"Live":             func() error { _, err := c.Live(ctx); return err },
		"CreateAPIKey": func() error {
			_, err := c.CreateAPIKey(ctx, api.CreateAPIKeyRequest{Name: "n", Scopes: []string{api.ScopeRead}})
			return err
		},
		"ListAPIKeys":  func() error { _, err := c.ListAPIKeys(ctx); return err },
		"RevokeAPIKey": func() error { return c.RevokeAPIKey(ctx, "5f0c3e9a1b2d4c6e") },
		"Ready":        func() error { _, err := c.Ready(ctx); return err },
		"Ops":          func() error { _, err := c.Ops(ctx); return err },
	}

	typ := reflect.TypeOf(c)
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		call, ok := calls[name]
		if !ok {
			t.Errorf("(*client.Client).%s is not exercised by this test: add it to calls", name)
			continue
		}
		if err := call(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, r := range routes {
		if !hit[r] {
			t.Errorf("route %q is served but no client method calls it", r)
		}
	}
}

var testTime = time.Date(2025, 11, 20, 1, 46, 31, 0, time.UTC)

func drain(c *client.Content, err error) error {
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = io.Copy(io.Discard, c)
	return err
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "api", "testdata", name+".json"))
	if err != nil {
		t.Error(err)
	}
	return b
}
