package webhooks_test

import (
	"testing"

	"github.com/docstream/docstream/internal/webhooks"
)

// The sender signs the Standard Webhooks specification's test vector to
// the specification's signature, and webhook-ids are stable per endpoint,
// topic, LSN and key and differ when any of them does.
func TestSigningMatchesTheSpecificationsVector(t *testing.T) {
	got, err := webhooks.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if err != nil || got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("Sign = %q, %v", got, err)
	}
	id := webhooks.WebhookID("e1", "cdc.documents", 42, `{"id":"d"}`)
	if id != webhooks.WebhookID("e1", "cdc.documents", 42, `{"id":"d"}`) {
		t.Fatal("webhook-id is not stable")
	}
	for _, other := range []string{
		webhooks.WebhookID("e2", "cdc.documents", 42, `{"id":"d"}`),
		webhooks.WebhookID("e1", "cdc.signatures", 42, `{"id":"d"}`),
		webhooks.WebhookID("e1", "cdc.documents", 43, `{"id":"d"}`),
		webhooks.WebhookID("e1", "cdc.documents", 42, `{"id":"e"}`),
	} {
		if other == id {
			t.Fatalf("two different events share webhook-id %s", id)
		}
	}
}

// Secrets at rest decrypt only with the key and on the endpoint they were
// sealed for.
func TestSecretsAtRestNeedTheKeyAndTheEndpoint(t *testing.T) {
	c, err := webhooks.NewCipher(webhooks.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	secret := webhooks.NewSecret()
	sealed := c.Seal("endpoint-a", secret)
	if got, err := c.Open("endpoint-a", sealed); err != nil || got != secret {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := c.Open("endpoint-b", sealed); err == nil {
		t.Fatal("a secret opened on another endpoint")
	}
	other, _ := webhooks.NewCipher(webhooks.NewKey())
	if _, err := other.Open("endpoint-a", sealed); err == nil {
		t.Fatal("a secret opened with another key")
	}
}
