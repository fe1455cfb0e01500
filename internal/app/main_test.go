package app

import (
	"testing"

	"github.com/docstream/docstream/internal/testenv"
)

// TestMain starts PostgreSQL and Redis for the tests that run modules.
func TestMain(m *testing.M) { testenv.Main(m) }
