package postgres_test

import (
	"testing"

	"github.com/docstream/docstream/internal/postgres"
)

// ParseLSN reads the text form pg_current_wal_insert_lsn() answers, and
// gives 0 (read-your-writes then does not wait) for anything else.
func TestParseLSN(t *testing.T) {
	for in, want := range map[string]uint64{
		"16/B374D848":       0x16B374D848,
		"0/0":               0,
		"FFFFFFFF/FFFFFFFF": 1<<64 - 1,
		"":                  0,
		"16B374D848":        0,
		"16/":               0,
		"x/1":               0,
		"1/100000000":       0, // a half wider than 32 bits
	} {
		if got := postgres.ParseLSN(in); got != want {
			t.Errorf("ParseLSN(%q) = %#x, want %#x", in, got, want)
		}
	}
}
