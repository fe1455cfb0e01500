package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"
	"github.com/spf13/cobra"

	"github.com/docstream/docstream/internal/config"
)

func init() {
	commands = append(commands, newWatchCmd)
}

type tokenOut struct {
	AccessToken string `json:"access_token"`
}

type liveMessage struct {
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	Timestamp string          `json:"timestamp"`
}

func newWatchCmd(e *env) *cobra.Command {
	var user, email, token string
	cmd := &cobra.Command{
		Use:   "watch DOCUMENT_ID",
		Short: "Stream a document's live events (WebSocket) until Ctrl-C",
		Long: "watch opens the realtime WebSocket through the gateway and prints every event of the document as it happens.\n" +
			"Without --token it asks the development endpoint /auth/token for one (only `docstream dev` serves it).",
		Args: cobra.ExactArgs(1),
	}
	cf := bindClientFlags(cmd)
	cmd.Flags().StringVar(&user, "user", "docstream-cli", "user id for the development token")
	cmd.Flags().StringVar(&email, "email", "", "email for the development token")
	cmd.Flags().StringVar(&token, "token", "", "JWT to connect with (default: a development token from /auth/token)")
	config.NoEnv(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := cf.client(e)
		if err != nil {
			return err
		}
		return c.watch(cmd.Context(), args[0], token, user, email)
	}
	return cmd
}

// watch prints events until ctx is done (nil) or the server ends the stream.
func (c *client) watch(ctx context.Context, docID, token, user, email string) error {
	if token == "" {
		q := url.Values{"user_id": {user}}
		if email != "" {
			q.Set("email", email)
		}
		var t tokenOut
		if _, err := c.call(ctx, http.MethodGet, "/auth/token", q, nil, &t); err != nil {
			return fmt.Errorf("getting a development token: %w", err)
		}
		token = t.AccessToken
	}
	wsURL := c.url("/ws/"+url.PathEscape(docID), url.Values{"token": {token}})
	wsURL = "ws" + strings.TrimPrefix(wsURL, "http") // http→ws, https→wss
	conn, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: c.http})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return fmt.Errorf("connect %s: %d %s", docID, resp.StatusCode, http.StatusText(resp.StatusCode))
		}
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	if !c.json {
		fmt.Fprintf(c.stderr, "watching %s (Ctrl-C stops)\n", docID)
	}
	for {
		_, msg, err := conn.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				conn.Close(websocket.StatusNormalClosure, "bye")
				return nil
			}
			if s := websocket.CloseStatus(err); s == websocket.StatusNormalClosure || s == websocket.StatusGoingAway {
				return nil
			}
			return fmt.Errorf("stream ended: %w", err)
		}
		if c.json {
			// One event per line, as received: easy to pipe into jq.
			if _, err := fmt.Fprintf(c.stdout, "%s\n", strings.TrimSpace(string(msg))); err != nil {
				return err
			}
			continue
		}
		var m liveMessage
		if err := json.Unmarshal(msg, &m); err != nil {
			return errors.New("stream sent a message that is not JSON")
		}
		if _, err := fmt.Fprintf(c.stdout, "%s  %-24s %s\n", m.Timestamp, m.Type, summarize(m.Data)); err != nil {
			return err
		}
	}
}

// summarize renders an event's data as key=value pairs of its scalar fields.
func summarize(data json.RawMessage) string {
	var fields map[string]any
	if json.Unmarshal(data, &fields) != nil {
		return string(data)
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
