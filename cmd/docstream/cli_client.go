package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/docstream/docstream/apperr"
	"github.com/docstream/docstream/client"
)

// clientFlags are the flags of every user command (doc, sign, search,
// watch). Their real names carry a docstream- prefix so that the automatic
// environment fallback reads DOCSTREAM_SERVER and DOCSTREAM_OUTPUT rather
// than the far too generic SERVER and OUTPUT; --server and --output (-o)
// are accepted as aliases.
type clientFlags struct {
	server string
	output string
	token  string
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
	fs.StringVar(&f.token, "docstream-token", "", "bearer token (JWT or API key) to send; default: the one `docstream login` stored; alias --token")
	// A global normalization applies to this command's subcommands too.
	cmd.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		switch name {
		case "server":
			name = "docstream-server"
		case "output":
			name = "docstream-output"
		case "token":
			name = "docstream-token"
		}
		return pflag.NormalizedName(name)
	})
	return f
}

// userClient is what a user command works with: the typed API client of
// the gateway, the output format and the command's streams.
type userClient struct {
	api    *client.Client
	token  string // the credential api sends ("" : none)
	json   bool
	stdout io.Writer
	stderr io.Writer
}

func (f *clientFlags) client(e *env) (*userClient, error) {
	if f.output != outputText && f.output != outputJSON {
		return nil, fmt.Errorf("--output %q: choose text or json", f.output)
	}
	// No overall timeout: uploads and downloads may be large; a stuck
	// server is noticed by the connect and response-header timeouts.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = 60 * time.Second
	token := f.token
	if token == "" {
		t, err := storedToken(e)
		if err != nil {
			return nil, err
		}
		token = t
	}
	c, err := client.New(f.server, client.WithHTTPClient(&http.Client{Transport: transport}), client.WithToken(token))
	if err != nil {
		return nil, fmt.Errorf("--server %q: want http(s)://host:port", f.server)
	}
	return &userClient{api: c, token: token, json: f.output == outputJSON, stdout: e.stdout, stderr: e.stderr}, nil
}

// shownError is an error answer as the CLI prints it: the HTTP status, the
// message, the code and each offending field.
type shownError struct {
	status int
	err    *apperr.Error
}

func (e *shownError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.status, e.err.Message)
	if e.err.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.err.Code)
	}
	for _, d := range e.err.Details {
		fmt.Fprintf(&b, "\n  %s: %s", d.Field, d.Message)
	}
	return b.String()
}

func (e *shownError) Unwrap() error { return e.err }

// shown turns an error answer of the API into a shownError; other errors
// pass unchanged.
func shown(err error) error {
	var ae *apperr.Error
	if status := client.StatusCode(err); status != 0 && errors.As(err, &ae) {
		return &shownError{status: status, err: ae}
	}
	return err
}

// print writes v for -o json (indented) or calls text otherwise.
func (c *userClient) print(v any, text func() error) error {
	if !c.json {
		return text()
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n", b)
	return err
}
