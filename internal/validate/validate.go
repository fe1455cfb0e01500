// Package validate holds the input rules that more than one service applies
// (ids, email addresses), written once so that the same input gets the same
// answer from every service and every protocol.
package validate

import (
	"fmt"
	"net/mail"
	"strings"

	"github.com/google/uuid"

	"github.com/docstream/docstream/apperr"
)

// MaxEmail is the longest email address accepted (the columns are varchar(255)).
const MaxEmail = 255

// UUID returns s in canonical form if it is a UUID written the way the API
// writes them (36 characters, hyphenated; either case). The other forms
// uuid.Parse accepts (braces, urn:uuid:, no hyphens) are refused, so that
// one id has one spelling in URLs, caches and logs.
func UUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return id.String(), true
}

// ID checks an id given in a path or an RPC: anything but a UUID is an
// invalid request (400, gRPC INVALID_ARGUMENT). what names the resource.
func ID(what, s string) (string, error) {
	id, ok := UUID(s)
	if !ok {
		return "", apperr.E(apperr.Invalid, "%s id %q is not a UUID", what, s)
	}
	return id, nil
}

// Email returns why s is not an acceptable email address, or "" when it is.
// The rule: a bare addr-spec as net/mail parses it (no display name, no
// angle brackets, no comments), at most MaxEmail bytes, whose domain (after
// the one unquoted @, which is the last @) has a dot.
func Email(s string) string {
	switch {
	case s == "":
		return "is required"
	case len(s) > MaxEmail:
		return fmt.Sprintf("must be at most %d characters", MaxEmail)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return "must be a valid email address"
	}
	at := strings.LastIndexByte(s, '@')
	if domain := s[at+1:]; !strings.Contains(domain, ".") || strings.HasSuffix(domain, ".") {
		return "must be a valid email address"
	}
	return ""
}
