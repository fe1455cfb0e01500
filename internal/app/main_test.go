package app

import (
	"os"
	"testing"

	"github.com/docstream/docstream/internal/testenv"
)

// TestMain starts PostgreSQL and Redis for the tests that run modules. A
// child process started by a test (childEnv or cdcChildEnv set) uses the
// parent's.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" || os.Getenv(cdcChildEnv) != "" {
		os.Exit(m.Run())
	}
	testenv.Main(m)
}
