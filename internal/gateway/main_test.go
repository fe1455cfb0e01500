package gateway

import (
	"testing"

	"github.com/docstream/docstream/internal/testenv"
)

// TestMain starts PostgreSQL and Redis for the tests that put real document
// service instances behind the gateway.
func TestMain(m *testing.M) { testenv.Main(m) }
