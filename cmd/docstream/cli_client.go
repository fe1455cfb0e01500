package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// clientFlags are the flags of every user command (doc, sign, search,
// watch). Their real names carry a docstream- prefix so that the automatic
// environment fallback reads DOCSTREAM_SERVER and DOCSTREAM_OUTPUT rather
// than the far too generic SERVER and OUTPUT; --server and --output (-o)
// are accepted as aliases.
type clientFlags struct {
	server string
	output string
}

const (
	defaultServer = "http://localhost:8000"
	outputText    = "text"
	outputJSON    = "json"
)

func bindClientFlags(cmd *cobra.Command) *clientFlags {
	f := &clientFlags{}
	fs := cmd.PersistentFlags()
	fs.StringVar(&f.server, "docstream-server", defaultServer, "gateway URL; alias --server")
	fs.StringVarP(&f.output, "docstream-output", "o", outputText, "output format: text or json; alias --output")
	// A global normalization applies to this command's subcommands too.
	cmd.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		switch name {
		case "server":
			name = "docstream-server"
		case "output":
			name = "docstream-output"
		}
		return pflag.NormalizedName(name)
	})
	return f
}

// client talks to the gateway for the user commands.
type client struct {
	base   *url.URL
	http   *http.Client
	json   bool
	stdout io.Writer
	stderr io.Writer
}

func (f *clientFlags) client(e *env) (*client, error) {
	if f.output != outputText && f.output != outputJSON {
		return nil, fmt.Errorf("--output %q: choose text or json", f.output)
	}
	u, err := url.Parse(strings.TrimRight(f.server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q: want http(s)://host:port", f.server)
	}
	// No overall timeout: uploads and downloads may be large; a stuck
	// server is noticed by the connect and response-header timeouts.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = 60 * time.Second
	return &client{base: u, http: &http.Client{Transport: transport}, json: f.output == outputJSON, stdout: e.stdout, stderr: e.stderr}, nil
}

func (c *client) url(path string, q url.Values) string {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// apiError is a non-2xx answer in docstream's error shape.
type apiError struct {
	Status  int
	Code    string
	Message string
	Details []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	}
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, e.Message)
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	for _, d := range e.Details {
		fmt.Fprintf(&b, "\n  %s: %s", d.Field, d.Message)
	}
	return b.String()
}

// do sends a request and returns the response when its status is 2xx; any
// other status becomes an *apiError read from the body.
func (c *client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, contentType string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var shape struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Details []struct {
				Field   string `json:"field"`
				Message string `json:"message"`
			} `json:"details"`
		} `json:"error"`
	}
	ae := &apiError{Status: resp.StatusCode}
	if json.Unmarshal(raw, &shape) == nil && shape.Error.Message != "" {
		ae.Code, ae.Message, ae.Details = shape.Error.Code, shape.Error.Message, shape.Error.Details
	} else {
		ae.Message = strings.TrimSpace(string(raw))
		if ae.Message == "" {
			ae.Message = http.StatusText(resp.StatusCode)
		}
	}
	return nil, ae
}

// call sends a JSON request (in may be nil) and decodes a JSON answer into
// out, also returning its raw bytes for -o json.
func (c *client) call(ctx context.Context, method, path string, q url.Values, in, out any) ([]byte, error) {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(ctx, method, path, q, body, ct)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("unexpected answer from %s %s: %w", method, path, err)
		}
	}
	return raw, nil
}

// printJSON writes raw JSON indented, for -o json.
func (c *client) printJSON(raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		_, err = c.stdout.Write(raw)
		return err
	}
	b.WriteByte('\n')
	_, err := c.stdout.Write(b.Bytes())
	return err
}

func jsonUnmarshal(raw []byte, out any) error {
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	return nil
}
