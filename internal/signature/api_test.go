package signature

import (
	"slices"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/testenv"
)

// The server reads exactly the fields the public client sends.
func TestRequestsReadTheAPIFields(t *testing.T) {
	if s, a := testenv.JSONFields(CreateRequest{}), testenv.JSONFields(api.CreateSignatureRequest{}); !slices.Equal(s, a) {
		t.Errorf("CreateRequest reads %v; api.CreateSignatureRequest sends %v", s, a)
	}
}
