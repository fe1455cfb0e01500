package main

import (
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/docstream/docstream/internal/config"
)

func init() {
	commands = append(commands, newDocCmd)
}

// docOut is the document service's wire shape, as much as the CLI shows.
type docOut struct {
	ID            string `json:"id"`
	Title         string `json:"title"`
	ContentType   string `json:"content_type"`
	ContentSize   int64  `json:"content_size"`
	S3Key         string `json:"s3_key"`
	Status        string `json:"status"`
	CreatedBy     string `json:"created_by"`
	CreatedAt     string `json:"created_at"`
	UpdatedAt     string `json:"updated_at"`
	Version       int    `json:"version"`
	ContentSHA256 string `json:"content_sha256"`
}

type docStats struct {
	DocumentID  string `json:"document_id"`
	TotalViews  int64  `json:"total_views"`
	UniqueViews int64  `json:"unique_views"`
}

// progressThreshold: uploads at least this large show a progress bar.
const progressThreshold = 1 << 20

func newDocCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "doc", Short: "Create, read, update and delete documents through the gateway"}
	cf := bindClientFlags(cmd)

	// run wraps a subcommand body with the client built from the flags.
	run := func(f func(ctx context.Context, c *client, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(e)
			if err != nil {
				return err
			}
			return f(cmd.Context(), c, args)
		}
	}

	var title, content, contentType, createdBy, file string
	var noProgress bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a document from --content, or upload -f FILE (streamed, multipart)",
		Args:  cobra.NoArgs,
		RunE: run(func(ctx context.Context, c *client, _ []string) error {
			var d docOut
			var raw []byte
			var err error
			switch {
			case file != "" && content != "":
				return fmt.Errorf("give either --content or --file, not both")
			case file != "":
				raw, err = c.upload(ctx, file, title, createdBy, contentType, !noProgress, &d)
			default:
				in := map[string]string{"title": title, "content": content, "created_by": createdBy}
				if contentType != "" {
					in["content_type"] = contentType
				}
				raw, err = c.call(ctx, http.MethodPost, "/documents", nil, in, &d)
			}
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(raw)
			}
			return c.printDocument(d)
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
		RunE: run(func(ctx context.Context, c *client, args []string) error {
			var d docOut
			raw, err := c.call(ctx, http.MethodGet, "/documents/"+url.PathEscape(args[0]), nil, nil, &d)
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(raw)
			}
			return c.printDocument(d)
		}),
	}

	var skip, limit int
	list := &cobra.Command{
		Use: "list", Short: "List documents, newest first", Args: cobra.NoArgs,
		RunE: run(func(ctx context.Context, c *client, _ []string) error {
			var docs []docOut
			q := url.Values{"skip": {strconv.Itoa(skip)}, "limit": {strconv.Itoa(limit)}}
			raw, err := c.call(ctx, http.MethodGet, "/documents", q, nil, &docs)
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(raw)
			}
			return c.printDocuments(docs)
		}),
	}
	list.Flags().IntVar(&skip, "skip", 0, "documents to skip")
	list.Flags().IntVar(&limit, "limit", 20, "documents to show (at most 100)")

	var newTitle, newStatus string
	update := &cobra.Command{
		Use: "update ID", Short: "Change a document's --title and/or --status", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *client, args []string) error {
			in := map[string]string{}
			if newTitle != "" {
				in["title"] = newTitle
			}
			if newStatus != "" {
				in["status"] = newStatus
			}
			if len(in) == 0 {
				return fmt.Errorf("nothing to update: give --title and/or --status")
			}
			var d docOut
			raw, err := c.call(ctx, http.MethodPatch, "/documents/"+url.PathEscape(args[0]), nil, in, &d)
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(raw)
			}
			return c.printDocument(d)
		}),
	}
	update.Flags().StringVar(&newTitle, "title", "", "new title")
	update.Flags().StringVar(&newStatus, "status", "", "new status (created, sent, viewed, pending, approved, signed, completed, cancelled, archived)")

	del := &cobra.Command{
		Use: "delete ID", Short: "Delete a document and its signatures", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *client, args []string) error {
			if _, err := c.call(ctx, http.MethodDelete, "/documents/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
				return err
			}
			if c.json {
				return c.printJSON([]byte(fmt.Sprintf(`{"deleted":%q}`, args[0])))
			}
			_, err := fmt.Fprintf(c.stdout, "deleted %s\n", args[0])
			return err
		}),
	}

	var outFile string
	contentCmd := &cobra.Command{
		Use: "content ID", Short: "Write a document's content to stdout or --out FILE", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *client, args []string) error {
			resp, err := c.do(ctx, http.MethodGet, "/documents/"+url.PathEscape(args[0])+"/content", nil, nil, "")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var w io.Writer = c.stdout
			if outFile != "" {
				f, err := os.Create(outFile)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			if _, err := io.Copy(w, resp.Body); err != nil {
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
		RunE: run(func(ctx context.Context, c *client, args []string) error {
			var s docStats
			raw, err := c.call(ctx, http.MethodGet, "/documents/"+url.PathEscape(args[0])+"/stats", nil, nil, &s)
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(raw)
			}
			_, err = fmt.Fprintf(c.stdout, "document      %s\ntotal views   %d\nunique views  %d\n", s.DocumentID, s.TotalViews, s.UniqueViews)
			return err
		}),
	}
	for _, sub := range []*cobra.Command{create, get, list, update, del, contentCmd, stats} {
		config.NoEnv(sub.Flags())
		cmd.AddCommand(sub)
	}
	return cmd
}

// upload streams path as multipart/form-data (fields title, created_by,
// content_type, then file) without holding it in memory: the form is
// written into a pipe that is the request body.
func (c *client) upload(ctx context.Context, path, title, createdBy, contentType string, progress bool, out *docOut) ([]byte, error) {
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
	if partType == "" {
		partType = "application/octet-stream"
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

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeForm(mw, title, createdBy, contentType, filepath.Base(path), partType, src))
	}()
	resp, err := c.do(ctx, http.MethodPost, "/documents", nil, pr, mw.FormDataContentType())
	// Unblock the writer if the request ended before reading the whole form.
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return raw, jsonUnmarshal(raw, out)
}

func writeForm(mw *multipart.Writer, title, createdBy, contentType, filename, partType string, src io.Reader) error {
	fields := [][2]string{{"title", title}, {"created_by", createdBy}}
	if contentType != "" {
		fields = append(fields, [2]string{"content_type", contentType})
	}
	for _, kv := range fields {
		if err := mw.WriteField(kv[0], kv[1]); err != nil {
			return err
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "file", "filename": filename}))
	h.Set("Content-Type", partType)
	part, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := io.Copy(part, src); err != nil {
		return err
	}
	return mw.Close()
}

func (c *client) printDocument(d docOut) error {
	w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	rows := [][2]string{
		{"id", d.ID}, {"title", d.Title}, {"status", d.Status}, {"version", strconv.Itoa(d.Version)},
		{"content type", d.ContentType}, {"content size", humanBytes(d.ContentSize)},
		{"created by", d.CreatedBy}, {"created at", d.CreatedAt}, {"updated at", d.UpdatedAt},
	}
	if d.ContentSHA256 != "" {
		rows = append(rows, [2]string{"sha256", d.ContentSHA256})
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\n", r[0], r[1])
	}
	return w.Flush()
}

func (c *client) printDocuments(docs []docOut) error {
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
