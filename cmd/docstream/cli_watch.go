package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"

	"github.com/docstream/docstream/client"
	"github.com/docstream/docstream/internal/config"
)

func newWatchCmd(e *env) *cobra.Command {
	var user, email string
	cmd := &cobra.Command{
		Use:   "watch DOCUMENT_ID",
		Short: "Stream a document's live events (WebSocket) until Ctrl-C",
		Long: "watch opens the realtime WebSocket through the gateway and prints every event of the document as it happens.\n" +
			"It sends --token (or the token of `docstream login`); without one it asks the development endpoint /auth/token\n" +
			"for one (only `docstream dev` serves it) and, where there is none, connects anonymously (open mode).",
		Args: cobra.ExactArgs(1),
	}
	cf := bindClientFlags(cmd)
	cmd.Flags().StringVar(&user, "user", "docstream-cli", "user id for the development token")
	cmd.Flags().StringVar(&email, "email", "", "email for the development token")
	config.NoEnv(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := cf.client(e)
		if err != nil {
			return err
		}
		return shown(c.watch(cmd.Context(), args[0], user, email))
	}
	return cmd
}

// watch prints events until ctx is done (nil) or the server ends the stream.
func (c *userClient) watch(ctx context.Context, docID, user, email string) error {
	var token string // "" : the client's own (WithToken), if any
	if c.token == "" {
		t, err := c.api.DevToken(ctx, user, email)
		switch {
		case err == nil:
			token = t.AccessToken
		case client.StatusCode(err) == http.StatusNotFound:
			// Not `docstream dev`: anonymous, which open mode allows.
		default:
			return fmt.Errorf("getting a development token: %w", shown(err))
		}
	}
	// Resume: when the realtime instance goes away (a restart, a crash,
	// 1013 under load) the watch reconnects, through the gateway to another
	// instance, asking for the changes after the last one printed, and
	// says so on stderr.
	w, err := c.api.Watch(ctx, docID, client.WatchOptions{Token: token, Resume: true,
		Reconnecting: func(since uint64, cause error) {
			fmt.Fprintf(c.stderr, "watch: connection to realtime lost (%v); reconnecting with since=%d\n", shortCause(cause), since)
		}})
	if err != nil {
		if status := client.StatusCode(err); status != 0 {
			return fmt.Errorf("connect %s: %d %s", docID, status, http.StatusText(status))
		}
		return fmt.Errorf("connect: %w", err)
	}
	defer w.Close()
	if !c.json {
		fmt.Fprintf(c.stderr, "watching %s (Ctrl-C stops)\n", docID)
	}
	for {
		m, err := w.Next(ctx)
		switch {
		case ctx.Err() != nil, err == io.EOF:
			return nil
		case err != nil:
			return err
		}
		if c.json {
			// One event per line, as received: easy to pipe into jq.
			if _, err := fmt.Fprintf(c.stdout, "%s\n", bytes.TrimSpace(w.Frame())); err != nil {
				return err
			}
			continue
		}
		if _, err := fmt.Fprintf(c.stdout, "%s  %-24s %s\n", m.Timestamp, m.Type, summarize(w.Frame())); err != nil {
			return err
		}
	}
}

// shortCause is a lost connection's cause in a few words.
func shortCause(err error) string {
	if code := websocket.CloseStatus(err); code != -1 {
		return fmt.Sprintf("closed with %d", int(code))
	}
	return "connection dropped"
}

// summarize renders a message's data as key=value pairs of its scalar
// fields, in a fixed order.
func summarize(frame []byte) string {
	var m struct {
		Data json.RawMessage `json:"data"`
	}
	var fields map[string]any
	if json.Unmarshal(frame, &m) != nil || json.Unmarshal(m.Data, &fields) != nil {
		return string(m.Data)
	}
	var b strings.Builder
	for _, k := range []string{"document_id", "title", "old_status", "new_status", "status", "signer_email", "signer_name", "version", "changed"} {
		if v, ok := fields[k]; ok && v != nil {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%s=%v", k, v)
		}
	}
	return b.String()
}
