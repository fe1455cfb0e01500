// Package apperr is the one error type of docstream: a machine code, a message
// safe to show a client, and per-field details. Every layer returns these; the
// HTTP and gRPC edges map Code to a status in exactly one place each
// (HTTPStatus, GRPCCode). Anything that is not an *Error is internal.
package apperr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
)

// Code is a machine-readable error class.
type Code string

const (
	Invalid             Code = "invalid"               // malformed request (bad JSON, bad id)
	Validation          Code = "validation"            // well-formed but a field is wrong
	NotFound            Code = "not_found"             // no such resource or route
	MethodNotAllowed    Code = "method_not_allowed"    // the route exists, not with this method
	Conflict            Code = "conflict"              // state forbids it (illegal transition)
	PreconditionFailed  Code = "precondition_failed"   // If-Match did not match
	TooLarge            Code = "too_large"             // body over the limit
	RangeNotSatisfiable Code = "range_not_satisfiable" // Range outside the content
	RateLimited         Code = "rate_limited"          // too many requests
	Unauthenticated     Code = "unauthenticated"       // missing or bad credentials
	Forbidden           Code = "forbidden"             // known caller, not allowed (e.g. a WebSocket origin)
	UpgradeRequired     Code = "upgrade_required"      // a WebSocket route asked without the upgrade
	Canceled            Code = "canceled"              // the client went away before the answer
	Unavailable         Code = "unavailable"           // a dependency is down; retry later
	BadGateway          Code = "bad_gateway"           // the gateway could not reach the service
	GatewayTimeout      Code = "gateway_timeout"       // the service did not answer the gateway in time
	Internal            Code = "internal"              // a bug or an unexpected failure
)

// FieldError names one offending field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an application error.
type Error struct {
	Code    Code
	Message string
	Details []FieldError
	// Err is the underlying cause, logged but never shown to a client.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an *Error with a formatted message.
func E(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap builds an *Error that keeps err as its hidden cause.
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// Fields builds a validation error from field errors; nil when there are none.
func Fields(fields ...FieldError) error {
	if len(fields) == 0 {
		return nil
	}
	msg := fields[0].Field + ": " + fields[0].Message
	if len(fields) > 1 {
		msg = fmt.Sprintf("%s (and %d more)", msg, len(fields)-1)
	}
	return &Error{Code: Validation, Message: msg, Details: fields}
}

// As returns err as an *Error, turning anything else into an internal error
// whose message hides the cause.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: Internal, Message: "internal error", Err: err}
}

// CodeOf returns the Code of err (Internal for foreign errors).
func CodeOf(err error) Code { return As(err).Code }

// StatusClientClosedRequest is nginx's status for a client that went away
// before the answer; nobody reads it, but access logs and metrics show it.
const StatusClientClosedRequest = 499

// httpStatus is the one table from Code to HTTP status.
var httpStatus = map[Code]int{
	Invalid:             http.StatusBadRequest,
	Validation:          http.StatusUnprocessableEntity,
	NotFound:            http.StatusNotFound,
	MethodNotAllowed:    http.StatusMethodNotAllowed,
	Conflict:            http.StatusConflict,
	PreconditionFailed:  http.StatusPreconditionFailed,
	TooLarge:            http.StatusRequestEntityTooLarge,
	RangeNotSatisfiable: http.StatusRequestedRangeNotSatisfiable,
	RateLimited:         http.StatusTooManyRequests,
	Unauthenticated:     http.StatusUnauthorized,
	Forbidden:           http.StatusForbidden,
	UpgradeRequired:     http.StatusUpgradeRequired,
	Canceled:            StatusClientClosedRequest,
	Unavailable:         http.StatusServiceUnavailable,
	BadGateway:          http.StatusBadGateway,
	GatewayTimeout:      http.StatusGatewayTimeout,
	Internal:            http.StatusInternalServerError,
}

// HTTPStatus maps a Code to its HTTP status. This is the only such mapping.
func HTTPStatus(c Code) int {
	if s, ok := httpStatus[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// FromHTTP is HTTPStatus backwards, for an error answer whose body does not
// carry a code (the standard library's own error answers, a foreign
// upstream). A status no Code maps to is Internal.
func FromHTTP(status int) Code {
	for c, s := range httpStatus {
		if s == status {
			return c
		}
	}
	return Internal
}

// GRPCCode maps a Code to its gRPC status code. This is the only such mapping.
func GRPCCode(c Code) codes.Code {
	switch c {
	case Invalid, Validation:
		return codes.InvalidArgument
	case NotFound:
		return codes.NotFound
	case MethodNotAllowed:
		return codes.Unimplemented
	case Conflict, PreconditionFailed:
		return codes.FailedPrecondition
	case RangeNotSatisfiable:
		return codes.OutOfRange
	case TooLarge, RateLimited:
		return codes.ResourceExhausted
	case Unauthenticated:
		return codes.Unauthenticated
	case Forbidden:
		return codes.PermissionDenied
	case UpgradeRequired:
		return codes.FailedPrecondition
	case Canceled:
		return codes.Canceled
	case Unavailable, BadGateway:
		return codes.Unavailable
	case GatewayTimeout:
		return codes.DeadlineExceeded
	default:
		return codes.Internal
	}
}

// FromGRPC maps a gRPC status code back to a Code (for clients of our gRPC API).
func FromGRPC(c codes.Code) Code {
	switch c {
	case codes.InvalidArgument:
		return Invalid
	case codes.NotFound:
		return NotFound
	case codes.FailedPrecondition:
		return Conflict
	case codes.Unauthenticated:
		return Unauthenticated
	case codes.PermissionDenied:
		return Forbidden
	case codes.Canceled:
		return Canceled
	case codes.Unavailable, codes.DeadlineExceeded:
		return Unavailable
	default:
		return Internal
	}
}

// Body is the JSON body of every error answer of the HTTP API:
// {"error":{"code":…,"message":…,"details":[…]}}.
type Body struct {
	Error Error `json:"error"`
}

// wireError is Error as the API shows it: never the cause, and details as
// an array even when there are none.
type wireError struct {
	Code    Code         `json:"code"`
	Message string       `json:"message"`
	Details []FieldError `json:"details"`
}

// MarshalJSON encodes the code, message and details; the cause (Err) is
// never shown.
func (e Error) MarshalJSON() ([]byte, error) {
	d := e.Details
	if d == nil {
		d = []FieldError{}
	}
	return json.Marshal(wireError{Code: e.Code, Message: e.Message, Details: d})
}

// UnmarshalJSON decodes what MarshalJSON encodes (for clients of the API).
func (e *Error) UnmarshalJSON(b []byte) error {
	var w wireError
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	// Details stays as sent: [] (the server always sends an array) is
	// empty, not nil, so a client can tell the error shape from a body
	// that merely has a code.
	*e = Error{Code: w.Code, Message: w.Message, Details: w.Details}
	return nil
}
