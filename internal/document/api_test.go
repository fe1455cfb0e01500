package document

import (
	"slices"
	"testing"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/testenv"
)

// The server reads exactly the fields the public client sends.
func TestRequestsReadTheAPIFields(t *testing.T) {
	for _, c := range []struct{ server, client any }{
		{createRequest{}, api.CreateDocumentRequest{}},
		{updateRequest{}, api.UpdateDocumentRequest{}},
	} {
		if s, a := testenv.JSONFields(c.server), testenv.JSONFields(c.client); !slices.Equal(s, a) {
			t.Errorf("%T reads %v; %T sends %v", c.server, s, c.client, a)
		}
	}
}
