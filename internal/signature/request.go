package signature

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/internal/validate"
)

// Limits of a signing request.
const (
	MaxRecipients      = 50
	MaxMessage         = 10000
	MinReminder        = time.Second // tests remind every second; deployments use hours
	maxRequestBody     = 256 << 10
	maxActionBody      = maxBody
	tokenBytes         = 32   // 256-bit invitation tokens
	defaultReminderCap = 1000 // a reminder schedule ends after this many, even without an expiry
)

// SigningRequest, Recipient and Invitation are the wire types (api).
type (
	SigningRequest = api.SigningRequest
	Recipient      = api.Recipient
	Invitation     = api.Invitation
)

// requestInput is a validated api.CreateSigningRequest.
type requestInput struct {
	recipients []api.RecipientInput
	message    *string
	expiresAt  *time.Time
	reminder   time.Duration
	draft      bool
}

// validateRequest checks every field of a create, naming each offending one
// (recipients[2].email, expires_at, …).
func validateRequest(r api.CreateSigningRequest, now time.Time) (requestInput, error) {
	in := requestInput{draft: r.Draft}
	var errs []apperr.FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, apperr.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch {
	case len(r.Recipients) == 0:
		bad("recipients", "is required: at least one recipient")
	case len(r.Recipients) > MaxRecipients:
		bad("recipients", "must have at most %d recipients, got %d", MaxRecipients, len(r.Recipients))
	}
	seen := map[string]bool{}
	blocking := 0
	for i, rc := range r.Recipients {
		f := fmt.Sprintf("recipients[%d].", i)
		if msg := validate.Email(rc.Email); msg != "" {
			bad(f+"email", "%s", msg)
		} else if k := strings.ToLower(rc.Email); seen[k] {
			bad(f+"email", "is listed twice")
		} else {
			seen[k] = true
		}
		if utf8.RuneCountInString(rc.Name) > MaxName || !validText(rc.Name) {
			bad(f+"name", "must be valid text of at most %d characters", MaxName)
		}
		switch rc.Role {
		case api.RoleSigner, api.RoleApprover, api.RoleViewer:
			blocking++
		case api.RoleCC:
		default:
			bad(f+"role", "must be one of signer, approver, viewer, cc")
		}
		if rc.Order < 0 || rc.Order > 1000 {
			bad(f+"order", "must be between 0 and 1000")
		}
	}
	if len(r.Recipients) > 0 && blocking == 0 {
		bad("recipients", "needs at least one signer, approver or viewer")
	}
	if r.Message != "" {
		if utf8.RuneCountInString(r.Message) > MaxMessage || !validText(r.Message) {
			bad("message", "must be valid text of at most %d characters", MaxMessage)
		} else {
			in.message = &r.Message
		}
	}
	if r.ExpiresAt != nil {
		if !r.ExpiresAt.After(now) {
			bad("expires_at", "must be in the future")
		} else {
			t := r.ExpiresAt.UTC()
			in.expiresAt = &t
		}
	}
	if r.ReminderInterval != "" {
		d, err := time.ParseDuration(r.ReminderInterval)
		switch {
		case err != nil:
			bad("reminder_interval", "must be a duration such as 24h")
		case d < MinReminder:
			bad("reminder_interval", "must be at least %s", MinReminder)
		default:
			in.reminder = d
		}
	}
	in.recipients = r.Recipients
	return in, apperr.Fields(errs...)
}

// blocks reports whether a recipient of role must finish before the next
// order group is notified and the request completes.
func blocks(role api.Role) bool { return role != api.RoleCC }

// done reports whether a recipient has finished what its role asks.
func done(role api.Role, st api.RecipientState) bool {
	switch role {
	case api.RoleSigner:
		return st == api.RecipientSigned
	case api.RoleApprover:
		return st == api.RecipientApproved
	case api.RoleViewer:
		return st == api.RecipientViewed
	}
	return true // cc never blocks
}

// acted reports whether a recipient has used its one action.
func acted(st api.RecipientState) bool {
	return st == api.RecipientSigned || st == api.RecipientApproved || st == api.RecipientDeclined
}

// activeOrder is the order group now waiting: the lowest order holding a
// blocking recipient who is not done. ok is false when every blocking
// recipient is done (the request is complete).
func activeOrder(rs []api.Recipient) (order int, ok bool) {
	for _, r := range rs {
		if blocks(r.Role) && !done(r.Role, r.State) && (!ok || r.Order < order) {
			order, ok = r.Order, true
		}
	}
	return order, ok
}

// Action is what a recipient does with an invitation.
type Action string

const (
	ActionSign    Action = "sign"
	ActionApprove Action = "approve"
	ActionDecline Action = "decline"
)

// ParseAction validates the {action} of a route.
func ParseAction(s string) (Action, bool) {
	switch a := Action(s); a {
	case ActionSign, ActionApprove, ActionDecline:
		return a, true
	}
	return "", false
}
