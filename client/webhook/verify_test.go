package webhook_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/docstream/docstream/client/webhook"
)

// The Standard Webhooks specification's test vector (the one its
// reference libraries test against): this secret, id, timestamp and body
// sign to this signature.
const (
	specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTS     = "1614265330"
	specBody   = `{"test": 2432232314}`
	specSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func headers(sig string) http.Header {
	h := http.Header{}
	h.Set("webhook-id", specID)
	h.Set("webhook-timestamp", specTS)
	h.Set("webhook-signature", sig)
	return h
}

func TestVerifyFollowsTheSpecification(t *testing.T) {
	at := time.Unix(1614265330, 0)
	cases := []struct {
		name   string
		secret string
		h      http.Header
		body   string
		now    time.Time
		want   error
	}{
		{"the specification's vector verifies", specSecret, headers(specSig), specBody, at, nil},
		{"one of several signatures (a rotation) is enough", specSecret, headers("v1,Zm9v " + specSig), specBody, at, nil},
		{"another body does not", specSecret, headers(specSig), `{"test": 2432232315}`, at, webhook.ErrSignature},
		{"another secret does not", "whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAA", headers(specSig), specBody, at, webhook.ErrSignature},
		{"an unknown version is ignored", specSecret, headers("v2," + specSig[3:]), specBody, at, webhook.ErrSignature},
		{"a timestamp too old is refused", specSecret, headers(specSig), specBody, at.Add(6 * time.Minute), webhook.ErrTimestamp},
		{"a timestamp from the future is refused", specSecret, headers(specSig), specBody, at.Add(-6 * time.Minute), webhook.ErrTimestamp},
		{"missing headers are refused", specSecret, http.Header{}, specBody, at, webhook.ErrMissingHeaders},
		{"a malformed secret is refused", "whsec_!!", headers(specSig), specBody, at, webhook.ErrSecret},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := webhook.VerifyAt(c.secret, c.h, []byte(c.body), c.now); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}
