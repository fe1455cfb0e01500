package webapp

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/docstream/docstream/internal/change"
)

// The webhooks screen offers every event an endpoint may subscribe to:
// its list is written in JavaScript, so this test holds it to the Go table.
func TestTheWebhooksScreenOffersEveryWebhookEvent(t *testing.T) {
	h := Handler(Config{Enabled: true, AuthMode: "open", Dev: true})
	resp, body := get(t, h, "GET", "/app/js/webhooks.js")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /app/js/webhooks.js: %d", resp.StatusCode)
	}
	decl := regexp.MustCompile(`(?s)const EVENTS = \[(.*?)\];`).FindStringSubmatch(body)
	if decl == nil {
		t.Fatal("webhooks.js declares no EVENTS list")
	}
	var got []string
	for _, m := range regexp.MustCompile(`'([^']+)'`).FindAllStringSubmatch(decl[1], -1) {
		got = append(got, m[1])
	}
	slices.Sort(got)
	if want := change.WebhookEvents(); !slices.Equal(got, want) {
		t.Errorf("webhooks.js EVENTS:\n %s\nwant (change.WebhookEvents):\n %s", strings.Join(got, " "), strings.Join(want, " "))
	}
}
