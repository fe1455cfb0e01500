package validate

import (
	"strings"
	"testing"

	"github.com/docstream/docstream/apperr"
)

func TestEmailAcceptsABareAddressWithADottedDomain(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"john.doe@company.com", true},
		{"ebemad@client.com", true},
		{"a+tag@sub.example.co.uk", true},
		{"", false},
		{"john", false},
		{"john@localhost", false},
		{"John <john@company.com>", false},
		{"<john@company.com>", false},
		{" john@company.com", false},
		{"a@b@company.com", false},
		{`"a@b"@company.com`, false},
		{"john@company.", false},
		{"@company.com", false},
		{strings.Repeat("a", 250) + "@b.com", false},
	}
	for _, c := range cases {
		if msg := Email(c.in); (msg == "") != c.ok {
			t.Errorf("Email(%q) = %q; want ok=%v", c.in, msg, c.ok)
		}
	}
}

func TestIDTakesOnlyTheHyphenatedFormAndCanonicalises(t *testing.T) {
	const id = "0194c3a0-0000-7000-8000-000000000001"
	if got, err := ID("document", strings.ToUpper(id)); err != nil || got != id {
		t.Fatalf("upper case: %q %v", got, err)
	}
	for _, bad := range []string{"", "not-a-uuid", "{" + id + "}", "urn:uuid:" + id, strings.ReplaceAll(id, "-", ""), id + "0"} {
		_, err := ID("document", bad)
		if e := apperr.As(err); err == nil || e.Code != apperr.Invalid || !strings.Contains(e.Message, "document id") {
			t.Errorf("ID(%q): %v", bad, err)
		}
	}
}
