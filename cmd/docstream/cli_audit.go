package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// newAuditCmd groups the operator's audit tools: keygen makes the
// --audit-signing-key that serve requires.
func newAuditCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Audit trail tools (keygen)", Args: cobra.NoArgs}
	var out string
	keygen := &cobra.Command{
		Use:   "keygen",
		Short: "Generate an Ed25519 audit signing key (PEM PKCS#8) for --audit-signing-key; its public half is published by the server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			der, err := x509.MarshalPKCS8PrivateKey(priv)
			if err != nil {
				return err
			}
			key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
			if out == "" {
				_, err := e.stdout.Write(key)
				return err
			}
			// O_EXCL: never overwrite a key trails were signed with.
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("--out %s exists: a key that signed trails must be kept (rotate with --audit-verify-keys)", out)
			}
			if err != nil {
				return err
			}
			if _, err := f.Write(key); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		},
	}
	keygen.Flags().StringVar(&out, "out", "", "file to write the key to (mode 0600, never overwritten); empty: standard output")
	cmd.AddCommand(keygen)
	return cmd
}
