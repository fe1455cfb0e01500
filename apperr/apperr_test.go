package apperr

import (
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
)

func TestEveryCodeHasItsOwnHTTPStatusAndAGRPCCode(t *testing.T) {
	for c, status := range httpStatus {
		if got := FromHTTP(status); got != c {
			t.Errorf("status %d of %s reads back as %s: two codes share a status", status, c, got)
		}
		if g := GRPCCode(c); g == codes.Unknown || (g == codes.Internal) != (c == Internal) {
			t.Errorf("%s maps to gRPC %v", c, g)
		}
	}
	if HTTPStatus("no_such_code") != http.StatusInternalServerError || FromHTTP(http.StatusTeapot) != Internal {
		t.Error("an unknown code or status is not internal")
	}
}
