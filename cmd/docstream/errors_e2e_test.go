package main

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/testenv"
	pb "github.com/docstream/docstream/proto/documentpb"
)

// errAnswer is what a client sees of an error answer.
type errAnswer struct {
	status  int
	code    apperr.Code
	message string
	field   string // the first field named in details
	allow   string
	json    bool // the body was the JSON error shape
}

func errorAnswer(t *testing.T, method, url, body string) errAnswer {
	t.Helper()
	var send any
	if body != "" {
		send = body
	}
	var e apperr.Body
	resp := testenv.Do(t, method, url, send, &e)
	a := errAnswer{status: resp.StatusCode, allow: resp.Header.Get("Allow"),
		json: resp.Header.Get("Content-Type") == "application/json" && e.Error.Details != nil,
		code: e.Error.Code, message: e.Error.Message}
	if len(e.Error.Details) > 0 {
		a.field = e.Error.Details[0].Field
	}
	return a
}

// checkErrorsAgree runs against a whole system, addr holding each
// listener's address by its flag name: every HTTP listener answers an
// unknown path and an unknown method with the JSON error, and the same
// mistake gets the same status, code and field from every service, and
// the matching gRPC status from the document service's gRPC API.
func checkErrorsAgree(t *testing.T, addr map[string]string) {
	url := func(flag, path string) string { return "http://" + addr[flag] + path }

	t.Run("every listener answers an unknown path and method with the JSON error", func(t *testing.T) {
		for _, flag := range []string{"document-addr", "signature-addr", "search-addr", "realtime-addr",
			"cdc-addr", "indexer-addr", "gateway-addr", "gateway-admin-addr"} {
			if a := errorAnswer(t, "GET", url(flag, "/no/such/path"), ""); !a.json || a.status != 404 || a.code != apperr.NotFound {
				t.Errorf("%s: unknown path answered %+v", flag, a)
			}
			if a := errorAnswer(t, "DELETE", url(flag, "/health/live"), ""); !a.json || a.status != 405 ||
				a.code != apperr.MethodNotAllowed || !strings.Contains(a.allow, "GET") {
				t.Errorf("%s: unknown method answered %+v", flag, a)
			}
		}
	})

	const unknown = "0194c3a0-0000-7000-8000-00000000beef"
	type ask struct {
		name, method, url, body string
	}
	rows := []struct {
		mistake string
		code    apperr.Code
		field   string
		asks    []ask
	}{
		{"an id that is not a UUID", apperr.Invalid, "", []ask{
			{"document", "GET", url("document-addr", "/documents/not-a-uuid"), ""},
			{"document content", "GET", url("document-addr", "/documents/not-a-uuid/content"), ""},
			{"signature", "GET", url("signature-addr", "/signatures/not-a-uuid"), ""},
			{"signatures of a document", "GET", url("signature-addr", "/documents/not-a-uuid/signatures"), ""},
			{"realtime", "GET", url("realtime-addr", "/ws/not-a-uuid"), ""},
			{"gateway", "GET", url("gateway-addr", "/documents/not-a-uuid"), ""},
		}},
		{"an id in a braced or urn form", apperr.Invalid, "", []ask{
			{"document", "GET", url("document-addr", "/documents/{"+unknown+"}"), ""},
			{"signature", "GET", url("signature-addr", "/signatures/urn:uuid:"+unknown), ""},
			{"realtime", "GET", url("realtime-addr", "/ws/urn:uuid:"+unknown), ""},
		}},
		{"an unknown id", apperr.NotFound, "", []ask{
			{"document", "GET", url("document-addr", "/documents/"+unknown), ""},
			{"document stats", "GET", url("document-addr", "/documents/"+unknown+"/stats"), ""},
			{"signature", "GET", url("signature-addr", "/signatures/"+unknown), ""},
			{"signing an unknown document", "POST", url("signature-addr", "/signatures"),
				`{"document_id":"` + unknown + `","signer_email":"a@b.co","signer_name":"A"}`},
		}},
		{"malformed JSON", apperr.Invalid, "", []ask{
			{"document", "POST", url("document-addr", "/documents"), `{"title":`},
			{"signature", "POST", url("signature-addr", "/signatures"), `{"document_id":`},
		}},
		{"an unknown JSON field", apperr.Validation, "owner", []ask{
			{"document", "POST", url("document-addr", "/documents"), `{"owner":"x"}`},
			{"signature", "POST", url("signature-addr", "/signatures"), `{"owner":"x"}`},
		}},
		{"a zero limit", apperr.Validation, "limit", []ask{
			{"documents", "GET", url("document-addr", "/documents?limit=0"), ""},
			{"signatures", "GET", url("signature-addr", "/signatures?limit=0"), ""},
		}},
		{"a limit over 1000", apperr.Validation, "limit", []ask{
			{"documents", "GET", url("document-addr", "/documents?limit=1001"), ""},
			{"signatures", "GET", url("signature-addr", "/signatures?limit=1001"), ""},
		}},
		{"a word for skip", apperr.Validation, "skip", []ask{
			{"documents", "GET", url("document-addr", "/documents?skip=ten"), ""},
			{"signatures", "GET", url("signature-addr", "/signatures?skip=ten"), ""},
		}},
		{"a word for a page size", apperr.Validation, "size", []ask{
			{"search", "GET", url("search-addr", "/search?q=x&size=ten"), ""},
			{"suggest", "GET", url("search-addr", "/suggest?q=xy&size=ten"), ""},
			{"aggregations", "GET", url("search-addr", "/aggregations/status?size=ten"), ""},
		}},
		{"an LSN that is not a number", apperr.Validation, "", []ask{
			{"search min_lsn", "GET", url("search-addr", "/search?q=x&min_lsn=abc"), ""},
			{"realtime since", "GET", url("realtime-addr", "/ws/"+unknown+"?since=abc"), ""},
		}},
		{"an email with two @", apperr.Validation, "", []ask{
			{"document created_by", "POST", url("document-addr", "/documents"), `{"title":"t","content":"c","created_by":"a@b@company.com"}`},
			{"signature signer_email", "POST", url("signature-addr", "/signatures"), `{"document_id":"` + unknown + `","signer_email":"a@b@company.com","signer_name":"A"}`},
		}},
		{"an email without a dot in its domain", apperr.Validation, "", []ask{
			{"document created_by", "POST", url("document-addr", "/documents"), `{"title":"t","content":"c","created_by":"john@localhost"}`},
			{"signature signer_email", "POST", url("signature-addr", "/signatures"), `{"document_id":"` + unknown + `","signer_email":"john@localhost","signer_name":"A"}`},
		}},
	}
	t.Run("the same mistake gets the same status and code from every service", func(t *testing.T) {
		for _, row := range rows {
			for _, q := range row.asks {
				a := errorAnswer(t, q.method, q.url, q.body)
				if !a.json || a.code != row.code || a.status != apperr.HTTPStatus(row.code) || (row.field != "" && a.field != row.field) {
					t.Errorf("%s, %s: got %+v; want %d %s %s", row.mistake, q.name, a, apperr.HTTPStatus(row.code), row.code, row.field)
				}
			}
		}
	})

	t.Run("the document gRPC API gives the same mistakes the matching status", func(t *testing.T) {
		cc, err := grpc.NewClient(addr["document-grpc-addr"], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		docs := pb.NewDocumentServiceClient(cc)
		ctx := context.Background()
		cases := []struct {
			mistake string
			call    func() error
			rest    ask
		}{
			{"an id that is not a UUID", func() error {
				_, err := docs.GetDocument(ctx, &pb.GetDocumentRequest{DocumentId: "not-a-uuid"})
				return err
			}, ask{"GET", "GET", url("document-addr", "/documents/not-a-uuid"), ""}},
			{"an unknown id", func() error {
				_, err := docs.GetDocument(ctx, &pb.GetDocumentRequest{DocumentId: unknown})
				return err
			}, ask{"GET", "GET", url("document-addr", "/documents/"+unknown), ""}},
			{"an unknown id to update", func() error {
				_, err := docs.UpdateDocumentStatus(ctx, &pb.UpdateDocumentStatusRequest{DocumentId: unknown, Status: "sent"})
				return err
			}, ask{"PATCH", "PATCH", url("document-addr", "/documents/"+unknown), `{"status":"sent"}`}},
			{"a status that does not exist", func() error {
				_, err := docs.UpdateDocumentStatus(ctx, &pb.UpdateDocumentStatusRequest{DocumentId: unknown, Status: "bogus"})
				return err
			}, ask{"PATCH", "PATCH", url("document-addr", "/documents/"+unknown), `{"status":"bogus"}`}},
		}
		for _, c := range cases {
			st := status.Convert(c.call())
			a := errorAnswer(t, c.rest.method, c.rest.url, c.rest.body)
			if !a.json || st.Code() != apperr.GRPCCode(a.code) || st.Message() != a.message {
				t.Errorf("%s: gRPC %v %q, REST %d %s %q", c.mistake, st.Code(), st.Message(), a.status, a.code, a.message)
			}
		}
	})
}
