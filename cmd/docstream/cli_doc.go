package main

import (
	"context"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/docstream/docstream/api"
	"github.com/docstream/docstream/client"
	"github.com/docstream/docstream/internal/config"
)

// progressThreshold: uploads at least this large show a progress bar.
const progressThreshold = 1 << 20

func newDocCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "doc", Short: "Create, read, update and delete documents through the gateway"}
	cf := bindClientFlags(cmd)

	// run wraps a subcommand body with the client built from the flags.
	run := func(f func(ctx context.Context, c *userClient, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(e)
			if err != nil {
				return err
			}
			return shown(f(cmd.Context(), c, args))
		}
	}

	var title, content, contentType, createdBy, file string
	var noProgress bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a document from --content, or upload -f FILE (streamed, multipart)",
		Args:  cobra.NoArgs,
		RunE: run(func(ctx context.Context, c *userClient, _ []string) error {
			var d *client.Written
			var err error
			switch {
			case file != "" && content != "":
				return fmt.Errorf("give either --content or --file, not both")
			case file != "":
				d, err = c.upload(ctx, file, title, createdBy, contentType, !noProgress)
			default:
				d, err = c.api.CreateDocument(ctx, api.CreateDocumentRequest{Title: title, Content: content, ContentType: contentType, CreatedBy: createdBy})
			}
			if err != nil {
				return err
			}
			return c.print(d, func() error { return c.printDocument(&d.Document) })
		}),
	}
	create.Flags().StringVar(&title, "title", "", "title (with --file, default: the file's name)")
	create.Flags().StringVar(&content, "content", "", "inline text content")
	create.Flags().StringVarP(&file, "file", "f", "", "file to upload")
	create.Flags().StringVar(&contentType, "content-type", "", "content type (default: text/plain inline; by file extension for uploads)")
	create.Flags().StringVar(&createdBy, "created-by", "", "author's email")
	create.Flags().BoolVar(&noProgress, "no-progress", false, "no progress bar for large uploads")

	get := &cobra.Command{
		Use: "get ID", Short: "Show a document (counts a view)", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			d, err := c.api.GetDocument(ctx, args[0])
			if err != nil {
				return err
			}
			return c.print(d, func() error { return c.printDocument(d) })
		}),
	}

	var skip, limit int
	var listSort string
	list := &cobra.Command{
		Use: "list", Short: "List documents, newest first (or by --sort)", Args: cobra.NoArgs,
		RunE: run(func(ctx context.Context, c *userClient, _ []string) error {
			page, err := c.api.ListDocumentsPage(ctx, api.ListDocumentsRequest{Skip: skip, Limit: limit, Sort: api.ListSort(listSort)})
			if err != nil {
				return err
			}
			docs := page.Documents
			return c.print(docs, func() error { return c.printDocuments(docs) })
		}),
	}
	list.Flags().IntVar(&skip, "skip", 0, "documents to skip")
	list.Flags().IntVar(&limit, "limit", 20, "documents to show (at most 100)")
	list.Flags().StringVar(&listSort, "sort", "", "order: -created_at (default), created_at, -updated_at, updated_at, title, -title")

	var newTitle, newStatus string
	update := &cobra.Command{
		Use: "update ID", Short: "Change a document's --title and/or --status", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			if newTitle == "" && newStatus == "" {
				return fmt.Errorf("nothing to update: give --title and/or --status")
			}
			d, err := c.api.UpdateDocument(ctx, args[0], api.UpdateDocumentRequest{Title: newTitle, Status: api.Status(newStatus)})
			if err != nil {
				return err
			}
			return c.print(d, func() error { return c.printDocument(&d.Document) })
		}),
	}
	update.Flags().StringVar(&newTitle, "title", "", "new title")
	update.Flags().StringVar(&newStatus, "status", "", "new status (created, sent, viewed, pending, approved, signed, completed, cancelled, archived)")

	del := &cobra.Command{
		Use: "delete ID", Short: "Delete a document and its signatures", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			if err := c.api.DeleteDocument(ctx, args[0]); err != nil {
				return err
			}
			return c.print(map[string]string{"deleted": args[0]}, func() error {
				_, err := fmt.Fprintf(c.stdout, "deleted %s\n", args[0])
				return err
			})
		}),
	}

	var outFile string
	contentCmd := &cobra.Command{
		Use: "content ID", Short: "Write a document's content to stdout or --out FILE", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			body, err := c.api.DocumentContent(ctx, args[0])
			if err != nil {
				return err
			}
			defer body.Close()
			var w io.Writer = c.stdout
			if outFile != "" {
				f, err := os.Create(outFile)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			if _, err := io.Copy(w, body); err != nil {
				return fmt.Errorf("download: %w", err)
			}
			if f, ok := w.(*os.File); ok && outFile != "" {
				return f.Close()
			}
			return nil
		}),
	}
	contentCmd.Flags().StringVar(&outFile, "out", "", "file to write (default: stdout)")

	stats := &cobra.Command{
		Use: "stats ID", Short: "Show a document's view counters", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			s, err := c.api.DocumentStats(ctx, args[0])
			if err != nil {
				return err
			}
			return c.print(s, func() error {
				_, err := fmt.Fprintf(c.stdout, "document      %s\ntotal views   %d\nunique views  %d\n", s.DocumentID, s.TotalViews, s.UniqueViews)
				return err
			})
		}),
	}
	var level string
	share := &cobra.Command{
		Use:   "share ID GRANTEE",
		Short: "Grant GRANTEE (user:<subject>, group:<name>, email:<address>, apikey:<id>) --level on a document, or change it",
		Args:  cobra.ExactArgs(2),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			sh, _, err := c.api.ShareDocument(ctx, args[0], api.ShareRequest{Grantee: args[1], Level: level})
			if err != nil {
				return err
			}
			return c.print(sh, func() error {
				_, err := fmt.Fprintf(c.stdout, "shared %s with %s (%s)\n", sh.DocumentID, sh.Grantee, sh.Level)
				return err
			})
		}),
	}
	share.Flags().StringVar(&level, "level", "view", "view, edit, sign or own")
	unshare := &cobra.Command{
		Use: "unshare ID GRANTEE", Short: "Revoke GRANTEE's share of a document", Args: cobra.ExactArgs(2),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			if _, err := c.api.UnshareDocument(ctx, args[0], args[1]); err != nil {
				return err
			}
			return c.print(map[string]string{"unshared": args[1]}, func() error {
				_, err := fmt.Fprintf(c.stdout, "unshared %s from %s\n", args[0], args[1])
				return err
			})
		}),
	}
	shares := &cobra.Command{
		Use: "shares ID", Short: "List who a document is shared with", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *userClient, args []string) error {
			list, err := c.api.DocumentShares(ctx, args[0])
			if err != nil {
				return err
			}
			return c.print(list, func() error {
				if len(list) == 0 {
					_, err := fmt.Fprintln(c.stdout, "not shared")
					return err
				}
				w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "GRANTEE\tLEVEL\tBY\tSINCE")
				for _, sh := range list {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", sh.Grantee, sh.Level, sh.CreatedBy, sh.CreatedAt.UTC().Format(time.RFC3339))
				}
				return w.Flush()
			})
		}),
	}
	for _, sub := range []*cobra.Command{create, get, list, update, del, contentCmd, stats, share, unshare, shares} {
		config.NoEnv(sub.Flags())
		cmd.AddCommand(sub)
	}
	return cmd
}

// upload streams path as multipart/form-data (fields title, created_by,
// content_type, then file) without holding it in memory.
func (c *userClient) upload(ctx context.Context, path, title, createdBy, contentType string, progress bool) (*client.Written, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if title == "" {
		title = filepath.Base(path)
	}
	partType := contentType
	if partType == "" {
		partType = mime.TypeByExtension(filepath.Ext(path))
	}
	var src io.Reader = f
	if progress && st.Size() >= progressThreshold {
		// DefaultBytes' look, but on the command's stderr.
		stderr := c.stderr
		bar := progressbar.NewOptions64(st.Size(),
			progressbar.OptionSetDescription("uploading "+filepath.Base(path)),
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionSetWidth(10),
			progressbar.OptionThrottle(65*time.Millisecond),
			progressbar.OptionShowCount(),
			progressbar.OptionOnCompletion(func() { fmt.Fprint(stderr, "\n") }),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionFullWidth(),
		)
		src = io.TeeReader(f, bar)
		defer func() { _ = bar.Finish() }()
	}
	return c.api.UploadDocument(ctx, client.Upload{
		Title: title, CreatedBy: createdBy, ContentType: contentType,
		FileName: filepath.Base(path), FileType: partType, Content: src,
	})
}

func (c *userClient) printDocument(d *api.Document) error {
	w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	rows := [][2]string{
		{"id", d.ID}, {"title", d.Title}, {"status", string(d.Status)}, {"version", strconv.Itoa(int(d.Version))},
		{"content type", d.ContentType}, {"content size", humanBytes(d.ContentSize)},
		{"created by", d.CreatedBy}, {"created at", d.CreatedAt.String()}, {"updated at", d.UpdatedAt.String()},
	}
	if d.Owner != "" {
		rows = append(rows, [2]string{"owner", d.Owner})
	}
	if d.ContentSHA256 != "" {
		rows = append(rows, [2]string{"sha256", d.ContentSHA256})
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\n", r[0], r[1])
	}
	return w.Flush()
}

func (c *userClient) printDocuments(docs []api.Document) error {
	if len(docs) == 0 {
		_, err := fmt.Fprintln(c.stdout, "no documents")
		return err
	}
	w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSTATUS\tVERSION\tSIZE\tCREATED BY\tTITLE")
	for _, d := range docs {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.Status, d.Version, humanBytes(d.ContentSize), d.CreatedBy, oneLine(d.Title, 60))
	}
	return w.Flush()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}
