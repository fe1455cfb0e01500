package cdc

import (
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestUTCTimestampFastPath checks that the byte-rewriting fast path for
// timestamptz gives exactly what parsing and formatting give, and that it
// declines every form it does not cover (which then takes the general path).
func TestUTCTimestampFastPath(t *testing.T) {
	general := func(s string) string {
		tm, ok := parseTimestamptz(s)
		if !ok {
			t.Fatalf("general path cannot parse %q", s)
		}
		return `"` + tm.UTC().Format("2006-01-02T15:04:05.000000Z") + `"`
	}
	for _, s := range []string{
		"2025-11-25 20:46:27+00",
		"2025-11-25 20:46:27.1+00",
		"2025-11-25 20:46:27.12+00",
		"2025-11-25 20:46:27.123456+00",
		"0001-01-01 00:00:00+00",
		"9999-12-31 23:59:59.999999+00",
	} {
		got, ok := appendUTCTimestamp(nil, []byte(s))
		if !ok {
			t.Errorf("%q: fast path declined", s)
			continue
		}
		if want := general(s); string(got) != want {
			t.Errorf("%q: fast path %s, general path %s", s, got, want)
		}
		if enc := appendValue(nil, pgtype.TimestamptzOID, value{text: []byte(s)}); string(enc) != string(got) {
			t.Errorf("%q: appendValue %s, want %s", s, enc, got)
		}
	}
	for _, s := range []string{
		"2025-11-25 20:46:27+02",
		"2025-11-25 20:46:27.5+05:30",
		"12025-11-25 20:46:27+00",
		"2025-11-25 20:46:27+00 BC",
		"infinity",
		"2025-11-25T20:46:27+00",
		"2025-11-25 20:46:27.+00",
		"2025-11-25 20:46:27.1234567890+00",
	} {
		if got, ok := appendUTCTimestamp(nil, []byte(s)); ok {
			t.Errorf("%q: fast path took it as %s", s, got)
		}
	}
	// Another offset still comes out in UTC through the general path.
	if got, want := string(appendValue(nil, pgtype.TimestamptzOID, value{text: []byte("2025-11-25 22:46:27.5+02")})), `"2025-11-25T20:46:27.500000Z"`; got != want {
		t.Errorf("offset +02: got %s, want %s", got, want)
	}
}

// TestAppendStringBytesAndString checks the two input forms escape alike,
// including multi-byte and invalid UTF-8.
func TestAppendStringBytesAndString(t *testing.T) {
	for _, s := range []string{"plain", "Línea\nnueva", `q"b\s`, "\x01\x1f", "bad\xffutf8", "emoji 😀 <&>", "\u2028"} {
		a, b := string(appendString(nil, s)), string(appendString(nil, []byte(s)))
		if a != b {
			t.Errorf("%q: string form %s, bytes form %s", s, a, b)
		}
	}
	if got, want := string(appendString(nil, "bad\xffutf8 é\n")), `"bad\ufffdutf8 é\n"`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// documents.readers is a text[]: Debezium gives a JSON array of strings.
func TestTextArrayIsAJSONArray(t *testing.T) {
	for in, want := range map[string]string{
		`{}`:                     `[]`,
		`{user:a,"group:x y"}`:   `["user:a","group:x y"]`,
		`{"email:a\"b@c",NULL}`:  `["email:a\"b@c",null]`,
		`{"line\\nbreak","é"}`:   `["line\\nbreak","é"]`,
		`{user:a,user:b,user:c}`: `["user:a","user:b","user:c"]`,
	} {
		got := string(appendValue(nil, pgtype.TextArrayOID, value{text: []byte(in)}))
		if got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
	// Not an array after all: kept as a string rather than lost.
	if got := string(appendValue(nil, pgtype.TextArrayOID, value{text: []byte(`oops`)})); got != `"oops"` {
		t.Errorf("malformed array: %s", got)
	}
}
