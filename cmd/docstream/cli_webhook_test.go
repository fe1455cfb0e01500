package main

import (
	"net/http"
	"strings"
	"testing"
)

const testWebhookID = "06946690-1d00-7000-8000-1a2b3c4d5e6f"
const testWebhookJSON = `{"id":"` + testWebhookID + `","url":"https://crm.example.com/hook","events":["document.created"],"description":"","enabled":true,"created_at":"2025-11-20T01:46:31Z","updated_at":"2025-11-20T01:46:31Z"}`

func TestWebhookCommandsCallTheirEndpoints(t *testing.T) {
	created := strings.TrimSuffix(testWebhookJSON, "}") + `,"secret":"whsec_c2VjcmV0"}`
	srv, seen := fakeGateway(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /webhooks":                                      answer(201, created),
		"GET /webhooks":                                       answer(200, `{"webhooks":[`+testWebhookJSON+`]}`),
		"PATCH /webhooks/{id}":                                answer(200, testWebhookJSON),
		"POST /webhooks/{id}/rotate":                          answer(200, created),
		"GET /webhooks/{id}/deliveries":                       answer(200, `{"deliveries":[{"id":"7","webhook_id":"msg_x","type":"document.created","status":"failed","attempts":1,"last_status":410,"created_at":"2025-11-20T01:46:31Z","history":[]}]}`),
		"POST /webhooks/{id}/replay":                          answer(202, `{"queued":3}`),
		"DELETE /webhooks/{id}":                               func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
		"POST /webhooks/{id}/deliveries/{delivery}/redeliver": answer(202, `{"queued":1}`),
	})
	cases := []struct {
		args         []string
		method, path string
		body         string
		out          []string
	}{
		{[]string{"webhook", "create", "https://crm.example.com/hook", "--event", "document.created"}, "POST", "/webhooks",
			`{"url":"https://crm.example.com/hook","events":["document.created"]}`, []string{"whsec_c2VjcmV0", "only time the signing secret is shown"}},
		{[]string{"webhook", "list"}, "GET", "/webhooks", "", []string{testWebhookID, "document.created"}},
		{[]string{"webhook", "update", testWebhookID, "--disable"}, "PATCH", "/webhooks/" + testWebhookID, `{"enabled":false}`, []string{testWebhookID}},
		{[]string{"webhook", "rotate", testWebhookID, "--overlap", "1h"}, "POST", "/webhooks/" + testWebhookID + "/rotate", `{"overlap":"1h"}`, []string{"whsec_c2VjcmV0"}},
		{[]string{"webhook", "deliveries", testWebhookID, "--status", "failed"}, "GET", "/webhooks/" + testWebhookID + "/deliveries", "", []string{"msg_x", "410"}},
		{[]string{"webhook", "redeliver", testWebhookID, "7"}, "POST", "/webhooks/" + testWebhookID + "/deliveries/7/redeliver", "", []string{"queued 1"}},
		{[]string{"webhook", "replay", testWebhookID, "--from-lsn", "10", "--to-lsn", "20"}, "POST", "/webhooks/" + testWebhookID + "/replay", `{"from_lsn":10,"to_lsn":20}`, []string{"queued 3"}},
		{[]string{"webhook", "delete", testWebhookID}, "DELETE", "/webhooks/" + testWebhookID, "", []string{"deleted " + testWebhookID}},
	}
	for i, c := range cases {
		out, _, err := cli(t, srv.URL, c.args...)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		r := seen()[i]
		if r.Method != c.method || r.Path != c.path || string(r.Body) != c.body {
			t.Fatalf("%v sent %s %s %q", c.args, r.Method, r.Path, r.Body)
		}
		for _, want := range c.out {
			if !strings.Contains(out, want) {
				t.Fatalf("%v: output lacks %q:\n%s", c.args, want, out)
			}
		}
	}
}
