package document

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/postgres"
)

// A signing request's state change is the signature service's write, not
// this service's (migration 00021's trigger moves signing_status and
// version in the workflow's transaction), so Redis still holds the row from
// before it until the invalidator applies the change stream. A GET with
// the write's LSN as min_lsn reads PostgreSQL instead, answers the new
// state at the new version, and refreshes Redis with it.
func TestAGetWithMinLSNReadsASigningStateChangeRedisHasNotSeen(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d := e.create(t, "Lease", "terms")
	var before Document
	if r := e.do(t, "GET", "/documents/"+d.ID, nil, &before); r.StatusCode != http.StatusOK || before.SigningStatus != "" {
		t.Fatalf("before the request: %d %+v", r.StatusCode, before)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO signing.signing_requests (id, document_id, created_by, state, content_sha256, content_key, document_version)
		VALUES ($1, $2::uuid, 'ann@example.com', 'sent', $3, $2::text || '/content', 1)`, uuid.NewString(), d.ID, strings.Repeat("a", 64)); err != nil {
		t.Fatal(err)
	}
	lsn := strconv.FormatUint(postgres.WALPosition(ctx, e.pool), 10)
	var cached Document
	if e.do(t, "GET", "/documents/"+d.ID, nil, &cached); cached.SigningStatus != "" || cached.Version != before.Version {
		t.Fatalf("without min_lsn Redis answered %q at version %d: the test shows nothing", cached.SigningStatus, cached.Version)
	}
	var got Document
	if r := e.do(t, "GET", "/documents/"+d.ID+"?min_lsn="+lsn, nil, &got); r.StatusCode != http.StatusOK ||
		got.SigningStatus != api.RequestSent || got.Version != before.Version+1 || r.Header.Get("ETag") != `"`+strconv.Itoa(int(got.Version))+`"` {
		t.Fatalf("with min_lsn: %d %q at version %d (ETag %s), want sent at %d", r.StatusCode, got.SigningStatus, got.Version, r.Header.Get("ETag"), before.Version+1)
	}
	var after Document
	if e.do(t, "GET", "/documents/"+d.ID, nil, &after); after.SigningStatus != api.RequestSent {
		t.Fatalf("Redis was not refreshed by the min_lsn read: %q", after.SigningStatus)
	}
}
