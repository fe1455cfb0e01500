package signature

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Mail is one message the workflow sends.
type Mail struct {
	To          []string
	Subject     string
	Text        string
	Attachments []Attachment
}

// Attachment is a file attached to a Mail.
type Attachment struct {
	Name, ContentType string
	Data              []byte
}

// Notifier delivers mail. Send is called inside the transaction of the job
// that causes it: an error rolls the job back and it is retried.
type Notifier interface {
	Send(ctx context.Context, m Mail) error
}

// LogNotifier writes each mail, links included, to W: the development
// notifier (docstream dev, or serve without --signing-smtp-url). It is the
// one place an invitation link is written anywhere but a mail, so it is
// meant for a developer's terminal, never for a shared log.
type LogNotifier struct {
	mu sync.Mutex
	W  io.Writer
}

func (n *LogNotifier) Send(_ context.Context, m Mail) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, err := fmt.Fprintf(n.W, "--- mail to %s: %s\n%s--- end of mail (%d attachments)\n", strings.Join(m.To, ", "), m.Subject, m.Text, len(m.Attachments))
	return err
}

// SMTPNotifier sends through an SMTP server (net/smtp): smtp://host:port
// (STARTTLS when the server offers it) with optional user:password, and the
// From address.
type SMTPNotifier struct {
	Addr    string
	Host    string
	Auth    smtp.Auth
	From    string
	Timeout time.Duration
}

// NewSMTPNotifier parses smtp://[user:password@]host:port.
func NewSMTPNotifier(rawURL, from string) (*SMTPNotifier, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "smtp" || u.Host == "" {
		return nil, fmt.Errorf("signing: --signing-smtp-url must be smtp://[user:password@]host:port")
	}
	host, _, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("signing: --signing-smtp-url: %w", err)
	}
	n := &SMTPNotifier{Addr: u.Host, Host: host, From: from, Timeout: 30 * time.Second}
	if u.User != nil {
		pw, _ := u.User.Password()
		n.Auth = smtp.PlainAuth("", u.User.Username(), pw, host)
	}
	return n, nil
}

func (n *SMTPNotifier) Send(ctx context.Context, m Mail) error {
	d := net.Dialer{Timeout: n.Timeout}
	conn, err := d.DialContext(ctx, "tcp", n.Addr)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	deadline := time.Now().Add(n.Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, n.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp: %w", err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok && n.Auth != nil {
		if err := c.StartTLS(nil); err != nil {
			return fmt.Errorf("smtp starttls: %w", err)
		}
	}
	if n.Auth != nil {
		if err := c.Auth(n.Auth); err != nil {
			return fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := c.Mail(n.From); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("smtp rcpt: %w", err)
		}
	}
	wc, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if _, err := wc.Write(message(n.From, m)); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	return c.Quit()
}

// message renders m as a MIME message: text/plain, or multipart/mixed with
// base64 attachments.
func message(from string, m Mail) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\n",
		from, strings.Join(m.To, ", "), mime.QEncoding.Encode("utf-8", m.Subject), time.Now().UTC().Format(time.RFC1123Z))
	text := strings.ReplaceAll(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n", "\r\n")
	if len(m.Attachments) == 0 {
		fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s", text)
		return b.Bytes()
	}
	var rb [12]byte
	_, _ = rand.Read(rb[:])
	boundary := "docstream-" + hex.EncodeToString(rb[:])
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n", boundary, text)
	for _, a := range m.Attachments {
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		fmt.Fprintf(&b, "--%s\r\nContent-Type: %s\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=%q\r\n\r\n", boundary, ct, a.Name)
		enc := base64.StdEncoding.EncodeToString(a.Data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes()
}
