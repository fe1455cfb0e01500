package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/docstream/docstream/client"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/config"
)

// tokenFile is where `docstream login` keeps the token, under the user's
// config directory (os.UserConfigDir; DOCSTREAM_CONFIG_DIR overrides it).
func tokenFile(e *env) (string, error) {
	dir := e.getenv("DOCSTREAM_CONFIG_DIR")
	if dir == "" {
		d, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("no config directory for the token (set DOCSTREAM_CONFIG_DIR): %w", err)
		}
		dir = filepath.Join(d, "docstream")
	}
	return filepath.Join(dir, "token"), nil
}

// storedToken is the token `docstream login` stored ("" when none).
func storedToken(e *env) (string, error) {
	path, err := tokenFile(e)
	if err != nil {
		return "", nil // no config dir: no stored token
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the stored token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func newLoginCmd(e *env) *cobra.Command {
	var dev, admin bool
	var user, email, name, groups string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Store a token for every other command (pasted, --token, or --dev from the development issuer)",
		Long: "login stores a bearer token in the user's config directory (mode 0600); every user command then sends it.\n" +
			"The token is read from --token (env DOCSTREAM_TOKEN) or, without it, from standard input (paste it and press Enter).\n" +
			"With --dev it is issued by `docstream dev`'s /auth/token for --user (any user: development only).",
		Args: cobra.NoArgs,
	}
	cf := bindClientFlags(cmd)
	cmd.Flags().BoolVar(&dev, "dev", false, "get the token from the development issuer (docstream dev)")
	cmd.Flags().StringVar(&user, "user", "", "with --dev: the subject (user id)")
	cmd.Flags().StringVar(&email, "email", "", "with --dev: the user's email (verified)")
	cmd.Flags().StringVar(&name, "name", "", "with --dev: the user's display name")
	cmd.Flags().StringVar(&groups, "groups", "", "with --dev: comma-separated groups")
	cmd.Flags().BoolVar(&admin, "admin", false, "with --dev: an admin")
	config.NoEnv(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		token := cf.token
		switch {
		case dev:
			if user == "" {
				return errors.New("--dev needs --user")
			}
			c, err := client.New(cf.server)
			if err != nil {
				return fmt.Errorf("--server %q: want http(s)://host:port", cf.server)
			}
			t, err := c.DevTokenWith(cmd.Context(), user, email, client.DevTokenOptions{Name: name, Groups: splitComma(groups), Admin: admin})
			if err != nil {
				return fmt.Errorf("the development issuer (docstream dev only): %w", shown(err))
			}
			token = t.AccessToken
		case token == "":
			fmt.Fprint(e.stderr, "Paste a token and press Enter: ")
			line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 64<<10)).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			token = strings.TrimSpace(line)
		}
		if token == "" {
			return errors.New("no token given")
		}
		path, err := tokenFile(e)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		// Written to a temporary file first, created 0600, so the token is
		// never readable by others, not even for a moment.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(token+"\n"), 0o600); err != nil {
			return err
		}
		if err := os.Chmod(tmp, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "token stored in %s\n", path)
		return nil
	}
	return cmd
}

func newLogoutCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the token `docstream login` stored (--token and DOCSTREAM_TOKEN are not stored and stay as they are)",
		Long: "logout removes the token file from the user's config directory, so commands send no stored token.\n" +
			"It does not revoke the token: a JWT stays valid until it expires (revoke an API key with `docstream apikey revoke`).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := tokenFile(e)
			if err != nil {
				return err
			}
			switch err := os.Remove(path); {
			case errors.Is(err, fs.ErrNotExist):
				fmt.Fprintln(e.stdout, "not logged in: no stored token")
				return nil
			case err != nil:
				return fmt.Errorf("removing the stored token: %w", err)
			}
			_ = os.Remove(path + ".tmp") // a login interrupted before its rename
			fmt.Fprintf(e.stdout, "token removed from %s\n", path)
			return nil
		},
	}
}

func newTokenCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Tokens for HS256 deployments without an identity provider"}
	ac := auth.DefaultConfig()
	var t auth.TokenRequest
	var groups string
	mint := &cobra.Command{
		Use:   "mint",
		Short: "Mint an HS256 token for any user, signed with --auth-jwt-secret (whoever holds the secret is an admin)",
		Long: "mint prints a token signed with the deployment's HS256 secret (--auth-jwt-secret, env AUTH_JWT_SECRET),\n" +
			"with its issuer, audience and claim names (--auth-jwt-issuer, --auth-claim-*), so its services accept it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := ac.Validate(); err != nil {
				return err
			}
			t.Groups = splitComma(groups)
			t.EmailVerified = t.Email != ""
			tok, exp, err := auth.Mint(ac, t, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, tok)
			fmt.Fprintf(e.stderr, "expires %s\n", exp.UTC().Format(time.RFC3339))
			return nil
		},
	}
	f := mint.Flags()
	f.StringVar(&t.Subject, "subject", "", "the user's subject (required)")
	f.StringVar(&t.Email, "email", "", "the user's email (marked verified)")
	f.StringVar(&t.Name, "name", "", "the user's display name")
	f.StringVar(&groups, "groups", "", "comma-separated groups")
	f.BoolVar(&t.Admin, "admin", false, "an admin (the --auth-admin-role role)")
	f.DurationVar(&t.TTL, "ttl", auth.DefaultTokenTTL, "lifetime of the token")
	config.NoEnv(f)
	// The deployment's --auth-* settings, with their environment names.
	ac.RegisterFlags(f)
	_ = mint.MarkFlagRequired("subject")
	cmd.AddCommand(mint)
	return cmd
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
