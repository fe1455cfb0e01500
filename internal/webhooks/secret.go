package webhooks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SecretPrefix starts every signing secret, as the Standard Webhooks
// specification writes them: whsec_ then the base64 of the HMAC key.
const SecretPrefix = "whsec_"

// NewSecret returns a fresh signing secret: 32 random bytes.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// secretKey is the HMAC key of a secret.
func secretKey(secret string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(k) == 0 {
		return nil, errors.New("webhooks: malformed signing secret")
	}
	return k, nil
}

// Sign is one v1 signature (Standard Webhooks): "v1," and the base64 of
// HMAC-SHA256 over "<id>.<timestamp>.<body>" keyed by the secret's bytes.
func Sign(secret, id string, timestamp int64, body []byte) (string, error) {
	k, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// SignatureHeader is the webhook-signature value: one signature per
// secret, space-separated (during a rotation's overlap, the new and the
// previous secret both sign, so a receiver holding either verifies).
func SignatureHeader(secrets []string, id string, timestamp int64, body []byte) (string, error) {
	var sigs []string
	for _, s := range secrets {
		sig, err := Sign(s, id, timestamp, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// WebhookID is the webhook-id of the event (topic, lsn, key) sent to
// endpoint: the same for every retry, redelivery and replay of it, and
// different for each endpoint, so a receiver dedupes by it without learning
// which other endpoints exist.
func WebhookID(endpoint, topic string, lsn uint64, key string) string {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], lsn)
	for _, part := range [][]byte{[]byte(endpoint), []byte(topic), n[:], []byte(key)} {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(part)))
		h.Write(l[:])
		h.Write(part)
	}
	return "msg_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h.Sum(nil)[:20]))
}

// Cipher encrypts signing secrets at rest (AES-256-GCM).
type Cipher struct{ aead cipher.AEAD }

// NewCipher reads a key: 32 bytes as 64 hex digits or base64.
func NewCipher(key string) (*Cipher, error) {
	var k []byte
	if b, err := hex.DecodeString(key); err == nil && len(b) == 32 {
		k = b
	} else if b, err := base64.StdEncoding.DecodeString(key); err == nil && len(b) == 32 {
		k = b
	} else {
		return nil, errors.New("webhooks: --webhooks-secret-key must be 32 bytes as 64 hex digits or base64")
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Cipher{aead: aead}, nil
}

// NewKey returns a fresh --webhooks-secret-key (hex).
func NewKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Seal encrypts a secret; the endpoint id is authenticated with it, so a
// ciphertext copied onto another endpoint's row does not decrypt.
func (c *Cipher) Seal(endpoint, secret string) []byte {
	nonce := make([]byte, c.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return c.aead.Seal(nonce, nonce, []byte(secret), []byte(endpoint))
}

// Open decrypts what Seal made.
func (c *Cipher) Open(endpoint string, b []byte) (string, error) {
	n := c.aead.NonceSize()
	if len(b) < n {
		return "", errors.New("webhooks: stored secret too short")
	}
	p, err := c.aead.Open(nil, b[:n], b[n:], []byte(endpoint))
	if err != nil {
		return "", fmt.Errorf("webhooks: the stored secret does not decrypt with --webhooks-secret-key (was the key changed?)")
	}
	return string(p), nil
}
