package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/docstream/docstream/apperr"
)

// Error maps an error from a query about what (e.g. "document <id>") to
// the one error type, the same way for every service:
//
//   - nil stays nil, and an *apperr.Error passes through unchanged;
//   - no rows is not_found ("<what> not found");
//   - a unique violation is conflict ("<what> already exists");
//   - a check, not-null or length violation is validation, and a value
//     PostgreSQL cannot read (invalid text representation, out of range)
//     is invalid: input checks should have caught both, but a client's
//     mistake is never a 5xx;
//   - the caller giving up is canceled;
//   - PostgreSQL (or PgBouncer) out of reach, refusing connections,
//     shutting down, timing out, or a transaction lost to a serialization
//     failure or deadlock is unavailable: retrying later may succeed;
//   - anything else is internal, its cause kept for the log.
func Error(err error, what string) error {
	if err == nil {
		return nil
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return apperr.E(apperr.NotFound, "%s not found", what)
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "23505": // unique_violation
			return apperr.Wrap(apperr.Conflict, err, "%s already exists", what)
		case "23514", "23502", "22001": // check, not null, string too long
			return apperr.Wrap(apperr.Validation, err, "%s: %s", what, pg.Message)
		case "22P02", "22003", "22007", "22008": // text representation, numeric or datetime out of range
			return apperr.Wrap(apperr.Invalid, err, "%s: %s", what, pg.Message)
		case "40001", "40P01": // serialization failure, deadlock
			return apperr.Wrap(apperr.Unavailable, err, "%s: concurrent change; retry", what)
		case "53300", "57P01", "57P02", "57P03", "57014": // too many connections, shutting down, cannot connect now, statement timeout
			return apperr.Wrap(apperr.Unavailable, err, "database unavailable")
		}
		if strings.HasPrefix(pg.Code, "08") { // connection exception, PgBouncer's included
			return apperr.Wrap(apperr.Unavailable, err, "database unavailable")
		}
		return apperr.Wrap(apperr.Internal, err, "internal error")
	}
	if errors.Is(err, context.Canceled) {
		return apperr.Wrap(apperr.Canceled, err, "%s: request canceled", what)
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return apperr.Wrap(apperr.Unavailable, err, "database timed out")
	}
	var nerr net.Error
	var connect *pgconn.ConnectError
	if pgconn.SafeToRetry(err) || errors.As(err, &connect) || errors.As(err, &nerr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return apperr.Wrap(apperr.Unavailable, err, "database unavailable")
	}
	return apperr.Wrap(apperr.Internal, err, "internal error")
}
