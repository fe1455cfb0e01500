package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/config"
)

// errInvalidTrail makes `docstream verify` exit non-zero after printing
// why the trail is not valid.
var errInvalidTrail = errors.New("the audit trail is NOT valid")

func newVerifyCmd(e *env) *cobra.Command {
	var file, keysFile, save, since string
	cmd := &cobra.Command{
		Use:   "verify [DOCUMENT_ID]",
		Short: "Verify a document's audit trail (hash chain and Ed25519-signed head); exit status 0 only when valid",
		Long: "verify fetches the document's audit trail (GET /documents/{id}/audit, owner or admin) and the server's public keys\n" +
			"(GET /.well-known/docstream-audit-keys) and checks them here: every entry's hash, the chain, the signed head and\n" +
			"the sealed checkpoints. With --file it verifies an exported trail instead (docstream verify ID --save FILE, or the\n" +
			"JSON of GET /documents/{id}/audit); --keys takes the key set from a file, fully offline. --since checks that the\n" +
			"trail still holds the head of an export saved earlier: the trail alone cannot show a rollback to an older signed head.",
		Args: cobra.MaximumNArgs(1),
	}
	cf := bindClientFlags(cmd)
	cmd.Flags().StringVar(&file, "file", "", "verify this exported trail (JSON of GET /documents/{id}/audit) instead of fetching one")
	cmd.Flags().StringVar(&keysFile, "keys", "", "public keys (JSON of GET /.well-known/docstream-audit-keys); default: fetched from the server")
	cmd.Flags().StringVar(&save, "save", "", "also write the fetched trail to this file, for verifying offline later")
	cmd.Flags().StringVar(&since, "since", "", "an export saved earlier (--save): the trail must still hold its signed head, which shows a rollback to an older signed head")
	config.NoEnv(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if (file == "") == (len(args) == 0) {
			return errors.New("give a DOCUMENT_ID or --file, one of them")
		}
		c, err := cf.client(e)
		if err != nil {
			return err
		}
		var l *api.AuditLog
		if file != "" {
			l = new(api.AuditLog)
			if err := readJSONFile(file, l); err != nil {
				return err
			}
		} else if l, err = c.api.DocumentAudit(cmd.Context(), args[0]); err != nil {
			return shown(err)
		}
		if save != "" {
			b, err := json.MarshalIndent(l, "", "  ")
			if err != nil {
				return err
			}
			if err := os.WriteFile(save, append(b, '\n'), 0o600); err != nil {
				return err
			}
		}
		var ks *api.AuditKeySet
		if keysFile != "" {
			ks = new(api.AuditKeySet)
			if err := readJSONFile(keysFile, ks); err != nil {
				return err
			}
		} else if ks, err = c.api.AuditKeys(cmd.Context()); err != nil {
			return shown(err)
		}
		keys, err := audit.KeyMap(*ks)
		if err != nil {
			return err
		}
		var kept *api.AuditCheckpoint
		if since != "" {
			var old api.AuditLog
			if err := readJSONFile(since, &old); err != nil {
				return err
			}
			if old.Head == nil {
				return fmt.Errorf("--since %s: the export has no head", since)
			}
			kept = old.Head
		}
		res := audit.VerifySince(l, keys, kept)
		err = c.print(res, func() error {
			verdict := "VALID"
			if !res.Valid {
				verdict = "NOT VALID"
			}
			fmt.Fprintf(c.stdout, "%s  document %s: %s\n", verdict, res.DocumentID, res.Reason)
			if res.FirstBroken != nil {
				fmt.Fprintf(c.stdout, "first broken entry: %d %s %s: %s\n", res.FirstBroken.Seq, res.FirstBroken.Type, res.FirstBroken.At, res.FirstBroken.Reason)
			}
			if res.Head != nil {
				fmt.Fprintf(c.stdout, "head: entry %d, hash %s, key %s, signed %v\n", res.Head.Seq, res.Head.Hash, res.Head.KeyID, res.Signed)
			}
			if len(res.Notes) > 0 {
				fmt.Fprintf(c.stdout, "notes: %s\n", strings.Join(res.Notes, "; "))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !res.Valid {
			return errInvalidTrail
		}
		return nil
	}
	return cmd
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
