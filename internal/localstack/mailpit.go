package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"syscall"
	"time"
)

// Mailpit is a running mailpit (a real SMTP server that keeps what it
// receives and shows it over an HTTP API): the SMTP sink of the signing
// tests.
type Mailpit struct {
	Dir      string
	SMTPPort int
	HTTPPort int
	proc     *proc
}

// StartMailpit starts mailpit on free loopback ports with its database in
// dir. The binary is looked up in PATH and in the project's tools
// directory (built by scripts/bootstrap.sh).
func StartMailpit(ctx context.Context, dir string, toolsDirs ...string) (*Mailpit, error) {
	bin, err := findBinary("mailpit", toolsDirs...)
	if err != nil {
		return nil, err
	}
	m := &Mailpit{Dir: dir}
	if m.SMTPPort, err = FreePort(); err != nil {
		return nil, err
	}
	if m.HTTPPort, err = FreePort(); err != nil {
		return nil, err
	}
	args := []string{
		"--smtp", fmt.Sprintf("127.0.0.1:%d", m.SMTPPort),
		"--listen", fmt.Sprintf("127.0.0.1:%d", m.HTTPPort),
		"--database", filepath.Join(dir, "mailpit.db"),
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure",
		"--max", "0", // keep every message: tests count them
	}
	m.proc, err = startProc("mailpit", bin, args, filepath.Join(dir, "mailpit.log"), nil)
	if err != nil {
		return nil, err
	}
	return m, m.proc.waitReady(ctx, 30*time.Second, func(ctx context.Context) error {
		_, err := m.Messages(ctx, "")
		return err
	})
}

// SMTPURL is the smtp:// URL of the server.
func (m *Mailpit) SMTPURL() string { return fmt.Sprintf("smtp://127.0.0.1:%d", m.SMTPPort) }

// API is the base URL of the HTTP API.
func (m *Mailpit) API() string { return fmt.Sprintf("http://127.0.0.1:%d/api/v1", m.HTTPPort) }

// Stop shuts the server down.
func (m *Mailpit) Stop() { m.proc.stop(syscall.SIGTERM, 10*time.Second) }

// MailSummary is a stored message as mailpit lists it.
type MailSummary struct {
	ID      string `json:"ID"`
	Subject string `json:"Subject"`
	To      []struct {
		Address string `json:"Address"`
	} `json:"To"`
	Attachments int `json:"Attachments"`
}

// Messages lists the stored messages, newest first, matching query (a
// mailpit search such as "to:a@example.com"; empty: every one).
func (m *Mailpit) Messages(ctx context.Context, query string) ([]MailSummary, error) {
	u := m.API() + "/messages?limit=1000"
	if query != "" {
		u = m.API() + "/search?limit=1000&query=" + url.QueryEscape(query)
	}
	var out struct {
		Messages []MailSummary `json:"messages"`
	}
	if err := m.get(ctx, u, &out); err != nil {
		return nil, err
	}
	return out.Messages, nil
}

// MailMessage is one message in full.
type MailMessage struct {
	ID          string `json:"ID"`
	Subject     string `json:"Subject"`
	Text        string `json:"Text"`
	Attachments []struct {
		PartID      string `json:"PartID"`
		FileName    string `json:"FileName"`
		ContentType string `json:"ContentType"`
		Size        int    `json:"Size"`
	} `json:"Attachments"`
}

// Message returns one message by id.
func (m *Mailpit) Message(ctx context.Context, id string) (*MailMessage, error) {
	var out MailMessage
	return &out, m.get(ctx, m.API()+"/message/"+url.PathEscape(id), &out)
}

func (m *Mailpit) get(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mailpit %s: status %d", u, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
