package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/docstream/docstream/api"
)

// Signer is the server's Ed25519 key for audit checkpoints.
type Signer struct {
	// KeyID names the key in entries and checkpoints: the first 16 hex
	// digits of the SHA-256 of the raw public key.
	KeyID string
	key   ed25519.PrivateKey
}

// NewSigner wraps an Ed25519 private key.
func NewSigner(key ed25519.PrivateKey) *Signer {
	return &Signer{KeyID: KeyIDOf(key.Public().(ed25519.PublicKey)), key: key}
}

// KeyIDOf is the key id of a public key.
func KeyIDOf(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Sign signs msg; the signature is standard base64.
func (s *Signer) Sign(msg []byte) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, msg))
}

// Public is the public half.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// PublicKey is one entry of /.well-known/docstream-audit-keys.
type PublicKey = api.AuditKey

// KeySet is the body of /.well-known/docstream-audit-keys.
type KeySet = api.AuditKeySet

// PublicKeyOf describes pub for the key set.
func PublicKeyOf(pub ed25519.PublicKey) PublicKey {
	return PublicKey{KeyID: KeyIDOf(pub), Algorithm: "Ed25519", PublicKey: base64.StdEncoding.EncodeToString(pub)}
}

// KeyMap turns a key set into the map Verify takes, refusing malformed
// entries and ids that do not match their key.
func KeyMap(ks KeySet) (map[string]ed25519.PublicKey, error) {
	out := map[string]ed25519.PublicKey{}
	for _, k := range ks.Keys {
		if !strings.EqualFold(k.Algorithm, "Ed25519") {
			return nil, fmt.Errorf("key %s: algorithm %q, want Ed25519", k.KeyID, k.Algorithm)
		}
		raw, err := base64.StdEncoding.DecodeString(k.PublicKey)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key %s: public_key is not 32 bytes of base64", k.KeyID)
		}
		pub := ed25519.PublicKey(raw)
		if KeyIDOf(pub) != k.KeyID {
			return nil, fmt.Errorf("key %s: key_id does not match the key (it is %s)", k.KeyID, KeyIDOf(pub))
		}
		out[k.KeyID] = pub
	}
	return out, nil
}

// seedPrefix marks a key written as its base64 seed ("ed25519:<base64>").
const seedPrefix = "ed25519:"

// ParseKey reads a private key: PEM (PKCS #8, as `openssl genpkey
// -algorithm ed25519` writes it) or "ed25519:" followed by the standard
// base64 of the 32-byte seed.
func ParseKey(raw []byte) (*Signer, error) {
	text := strings.TrimSpace(string(raw))
	if rest, ok := strings.CutPrefix(text, seedPrefix); ok {
		seed, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, errors.New("an ed25519: key must be the standard base64 of a 32-byte seed")
		}
		return NewSigner(ed25519.NewKeyFromSeed(seed)), nil
	}
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("not a PEM private key nor ed25519:<base64 seed>")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("PEM private key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("PEM private key is a %T, not Ed25519", k)
	}
	return NewSigner(ek), nil
}

// LoadKey reads --audit-signing-key: the key itself (PEM or
// "ed25519:<base64 seed>", as an environment variable holds it) or the
// path of a file holding it.
func LoadKey(value string) (*Signer, error) {
	v := strings.TrimSpace(value)
	if strings.HasPrefix(v, seedPrefix) || strings.HasPrefix(v, "-----BEGIN") {
		s, err := ParseKey([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("--audit-signing-key: %w", err)
		}
		return s, nil
	}
	raw, err := os.ReadFile(v)
	if err != nil {
		return nil, fmt.Errorf("--audit-signing-key: %w", err)
	}
	s, err := ParseKey(raw)
	if err != nil {
		return nil, fmt.Errorf("--audit-signing-key %s: %w", v, err)
	}
	return s, nil
}

// DevKey returns the key kept at path, generating it (mode 0600) on first
// use: `docstream dev`'s key, which survives restarts like its data.
func DevKey(path string) (*Signer, error) {
	if raw, err := os.ReadFile(path); err == nil {
		return ParseKey(raw)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	text := seedPrefix + base64.StdEncoding.EncodeToString(priv.Seed()) + "\n"
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		// Another process of this data dir generated it first.
		raw, rerr := os.ReadFile(path)
		if rerr != nil {
			return nil, rerr
		}
		return ParseKey(raw)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return NewSigner(priv), nil
}

// LoadVerifyKeys reads --audit-verify-keys: a comma-separated list of the
// keys audit heads and checkpoints were signed with before a rotation, each
// the key itself or a file holding it. A key is its private form (what
// --audit-signing-key took: PEM PKCS#8 or "ed25519:<base64 seed>"), whose
// public half is kept, or a PEM public key (`openssl pkey -pubout`).
func LoadVerifyKeys(value string) ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	for _, item := range strings.Split(value, ",") {
		v := strings.TrimSpace(item)
		if v == "" {
			continue
		}
		raw := []byte(v)
		name := "a key"
		if !strings.HasPrefix(v, seedPrefix) && !strings.HasPrefix(v, "-----BEGIN") {
			b, err := os.ReadFile(v)
			if err != nil {
				return nil, fmt.Errorf("--audit-verify-keys: %w", err)
			}
			raw, name = b, v
		}
		pub, err := parsePublic(raw)
		if err != nil {
			return nil, fmt.Errorf("--audit-verify-keys: %s: %w", name, err)
		}
		out = append(out, pub)
	}
	return out, nil
}

// parsePublic reads a public key, or the public half of a private one.
func parsePublic(raw []byte) (ed25519.PublicKey, error) {
	if block, _ := pem.Decode(raw); block != nil && block.Type == "PUBLIC KEY" {
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("PEM public key is a %T, not Ed25519", k)
		}
		return pub, nil
	}
	s, err := ParseKey(raw)
	if err != nil {
		return nil, errors.New("not a PEM public key, a PEM private key nor ed25519:<base64 seed>")
	}
	return s.Public(), nil
}
