// Package apikey is API keys for machines: an admin creates one (shown
// once), a machine presents it as a bearer credential, an admin revokes it.
// Keys live in PostgreSQL (auth.api_keys, outside the tables the change
// stream captures), stored as the SHA-256 of the key behind the key's id.
// Verifier implements auth.KeyVerifier for the authenticator of every
// service; Server is the REST API (/apikeys) the document service mounts.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"

	"github.com/docstream/docstream/internal/auth"
)

// A key is "dsk_<id>_<secret>": auth.APIKeyPrefix, 16 lower-case hex
// digits of id (64 random bits: the public part, shown in lists) and 52
// characters of lower-case unpadded base32 holding 256 random bits of
// secret. Every key has the same length, so a hostile 10 KB "key" is
// refused before anything is hashed or looked up.
const (
	idLen     = 16
	secretLen = 52 // base32 of 32 bytes, unpadded
	keyLen    = len(auth.APIKeyPrefix) + idLen + 1 + secretLen
)

var secretEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newKey returns a fresh key, its id and the hash to store.
func newKey() (raw, id string, sum [32]byte) {
	var idb [8]byte
	var secret [32]byte
	// crypto/rand.Read never fails (Go 1.24+: it crashes the program
	// rather than return predictable bytes).
	_, _ = rand.Read(idb[:])
	_, _ = rand.Read(secret[:])
	id = hex.EncodeToString(idb[:])
	raw = auth.APIKeyPrefix + id + "_" + secretEncoding.EncodeToString(secret[:])
	return raw, id, hash(raw)
}

// hash is what auth.api_keys.key_sha256 holds: the SHA-256 of the whole
// key, so a secret is bound to its id.
func hash(raw string) [32]byte { return sha256.Sum256([]byte(raw)) }

// parse returns the id of a well-formed key. It looks at every byte only
// to check its alphabet; nothing else about the secret is examined.
func parse(raw string) (id string, ok bool) {
	if len(raw) != keyLen || !auth.IsAPIKey(raw) {
		return "", false
	}
	rest := raw[len(auth.APIKeyPrefix):]
	if rest[idLen] != '_' || !ValidID(rest[:idLen]) {
		return "", false
	}
	for i := idLen + 1; i < len(rest); i++ {
		if c := rest[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", false
		}
	}
	return rest[:idLen], true
}

// ValidID reports whether id has the form of a key id.
func ValidID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := range len(id) {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
