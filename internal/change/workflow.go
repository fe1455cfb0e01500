package change

import (
	"fmt"

	"github.com/docstream/docstream/api"
)

// WorkflowData is what a signing request's or recipient's change tells a
// WebSocket client or a webhook endpoint: exactly one of the two results is
// set, for topic cdc.signing_requests or cdc.signing_recipients. The data
// are fixed field lists (api.SigningRequestData, api.RecipientData), so a
// column added to the tables reaches no one until it is named here.
func WorkflowData(topic string, env Envelope) (*api.SigningRequestData, *api.RecipientData, error) {
	raw := env.After
	if env.Op == OpDelete {
		raw = env.Before
	}
	switch topic {
	case topicSigningRequests:
		var before, after SigningRequest
		if _, err := Row(env.Before, &before); err != nil {
			return nil, nil, err
		}
		if _, err := Row(raw, &after); err != nil {
			return nil, nil, err
		}
		return &api.SigningRequestData{RequestID: after.ID, DocumentID: after.DocumentID, OldState: before.State, State: after.State,
			CreatedBy: after.CreatedBy, ContentSHA256: after.ContentSHA256, Outcome: after.Outcome, ExpiresAt: after.ExpiresAt,
			UpdatedAt: after.UpdatedAt}, nil, nil
	case topicSigningRecipients:
		var before, after SigningRecipient
		if _, err := Row(env.Before, &before); err != nil {
			return nil, nil, err
		}
		if _, err := Row(raw, &after); err != nil {
			return nil, nil, err
		}
		at := after.ActedAt
		switch after.State {
		case "notified":
			at = after.NotifiedAt
		case "viewed":
			at = after.ViewedAt
		}
		return nil, &api.RecipientData{RecipientID: after.ID, RequestID: after.RequestID, DocumentID: after.DocumentID,
			Email: after.Email, Name: after.Name, Role: after.Role, Order: after.SigningOrder, OldState: before.State, State: after.State,
			At: at, DeclineReason: after.DeclineReason}, nil
	}
	return nil, nil, fmt.Errorf("change: %q is not a signing workflow topic", topic)
}
