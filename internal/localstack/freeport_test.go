package localstack

import (
	"net"
	"strconv"
	"testing"
)

// A port from FreePort is below the ephemeral range (where outgoing
// connections would take it before the server binds) and can be bound.
func TestFreePortIsBelowTheEphemeralRangeAndBindable(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if p < freePortLow || p >= freePortHigh {
			t.Fatalf("port %d outside [%d, %d)", p, freePortLow, freePortHigh)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		ln.Close()
		seen[p] = true
	}
	if len(seen) < 2 {
		t.Fatalf("20 calls gave %d distinct ports; want them spread at random", len(seen))
	}
}
