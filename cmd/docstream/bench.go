package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/app"
	"github.com/docstream/docstream/internal/bench"
	"github.com/docstream/docstream/internal/config"
)

// newBenchCmd is `docstream bench`: the load generator (in the manner of
// pgbench, nats bench and redis-benchmark) and its corpus loader.
func newBenchCmd(e *env) *cobra.Command {
	var (
		o                          bench.Options
		server, output             string
		docURL, searchURL, signURL string
		realtimeURL, opsURL        string
	)
	cmd := &cobra.Command{
		Use:   "bench [scenario]",
		Short: "Load-test a running system: " + strings.Join(bench.Scenarios, ", ") + " (default reference-mix)",
		Long: `Load-test a running system and report throughput (2xx answers only), errors by status and HDR
latency percentiles per endpoint.

Scenarios:
  reference-mix  the reference's Locust mix: DocumentUser and SearchUser in equal numbers, waiting
                 1–3 s and 0.5–2 s between requests (list 5, create 3, search 2, sign 1; search 10, list 1)
  get            GET /documents/{id} over the first 1,000 documents (100 are created if there are fewer)
  stats          GET /documents/{id}/stats over the same documents
  create         POST /documents with 1 KiB of content
  search         the selective mix (a 0.1 % corpus word with a typo and a status filter, or a 1 % word),
                 or --query
  list           GET /documents, the first page or the page after a cursor seen earlier
  sign           POST /signatures (the reference's body) on the first 1,000 documents (100 are created
                 if there are fewer)
  watch          --users WebSocket subscribers of one new document and one writer changing its title
                 10 times a second (or at --rate); each receipt is timed from its PATCH's send time

Closed loop by default (--users: simulated users in reference-mix, connections otherwise); with
--rate the run is open-loop and each latency is measured from the request's intended send time.
Load a corpus first with "docstream bench load".`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Scenario = "reference-mix"
			if len(args) == 1 {
				o.Scenario = args[0]
			}
			if output != outputText && output != outputJSON {
				return fmt.Errorf("--output %q: choose text or json", output)
			}
			server = strings.TrimRight(server, "/")
			o.DocumentURL, o.SearchURL, o.SignatureURL = orDefault(docURL, server), orDefault(searchURL, server), orDefault(signURL, server)
			o.RealtimeURL = orDefault(realtimeURL, server)
			o.OpsURL = strings.TrimRight(opsURL, "/")
			o.Progress = e.stderr
			o.Seed = uint64(time.Now().UnixNano())
			if o.Token == "" {
				o.Token = e.getenv("DOCSTREAM_TOKEN")
			}
			if o.Token == "" {
				t, err := storedToken(e)
				if err != nil {
					return err
				}
				o.Token = t
			}
			rep, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if output == outputJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			rep.Text(e.stdout)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&server, "server", defaultServer, "the gateway (or one service) every request goes to")
	fs.StringVar(&docURL, "document-url", "", "the document service, e.g. http://localhost:8005 (default: --server)")
	fs.StringVar(&searchURL, "search-url", "", "the search service, e.g. http://localhost:8003 (default: --server)")
	fs.StringVar(&signURL, "signature-url", "", "the signature service, e.g. http://localhost:8002 (default: --server)")
	fs.StringVar(&realtimeURL, "realtime-url", "", "where watch's subscribers connect (/ws/{id}): the realtime service (default: --server)")
	fs.StringVar(&opsURL, "ops-url", "", "a gateway whose GET /ops is read each second: the CDC and indexer backlog during and after the run goes in the report (off by default: each read costs the system under test CPU, ~7 ms in docstream dev)")
	fs.IntVarP(&o.Users, "users", "c", 64, "closed loop: simulated users (reference-mix) or connections (other scenarios); alias --connections")
	fs.Float64Var(&o.Rate, "rate", 0, "open loop: requests per second, latency measured from each intended send time (0: closed loop)")
	fs.DurationVarP(&o.Duration, "duration", "T", 30*time.Second, "measured time, after the warm-up")
	fs.DurationVar(&o.Warmup, "warmup", 5*time.Second, "time before measuring (answers not counted)")
	fs.IntVar(&o.Requests, "requests", 0, "stop after this many measured requests (0: --duration only)")
	fs.StringVar(&o.Query, "query", "", "search: one query for every request (default: the selective mix)")
	fs.StringVarP(&output, "output", "o", outputText, "text or json")
	fs.StringVar(&o.Token, "token", "", "bearer token (JWT or API key) sent on every request; default: DOCSTREAM_TOKEN, then the one `docstream login` stored")
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "connections" {
			name = "users"
		}
		return pflag.NormalizedName(name)
	})
	config.NoEnv(fs)
	cmd.AddCommand(newBenchLoadCmd(e))
	cmd.AddCommand(newBenchIndexWaitCmd(e))
	cmd.AddCommand(newBenchFloorCmd(e))
	return cmd
}

// newBenchFloorCmd is `docstream bench floor`: the get scenario's floor, a
// bare net/http handler serving copies of the document service's answers.
func newBenchFloorCmd(e *env) *cobra.Command {
	var listen, docURL, token string
	cmd := &cobra.Command{
		Use:   "floor",
		Short: "Serve the get scenario's floor: a bare net/http handler answering copies of the document service's GETs",
		Long: `Copy the first 1,000 documents' GET answers (and the first page of the list) from --document-url,
then serve them from memory on --listen with a bare net/http handler until interrupted. Run
"docstream bench get --document-url http://<listen>" against it beside the same run against the
service, in the same minutes: the service's share of this floor is what its work costs beyond HTTP.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if token == "" {
				token = e.getenv("DOCSTREAM_TOKEN")
			}
			h, err := bench.Floor(cmd.Context(), http.DefaultClient, strings.TrimRight(docURL, "/"), token)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "bench floor: serving on http://%s\n", ln.Addr())
			srv := &http.Server{Handler: h}
			go func() {
				<-cmd.Context().Done()
				_ = srv.Close()
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&listen, "listen", "127.0.0.1:8099", "address the floor serves on")
	fs.StringVar(&docURL, "document-url", "http://localhost:8005", "the document service whose answers are copied")
	fs.StringVar(&token, "token", "", "bearer token for the copy (default: DOCSTREAM_TOKEN)")
	config.NoEnv(fs)
	return cmd
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return strings.TrimRight(v, "/")
}

func newBenchLoadCmd(e *env) *cobra.Command {
	var (
		o       bench.LoadOptions
		dataDir string
		output  string
	)
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Add corpus documents (rows by COPY, content in object storage), captured and indexed like any others",
		Long: `Add --documents corpus documents to a running system: content written to object storage, rows
COPYed into PostgreSQL in batches, then captured by CDC and indexed with their content like any
insert. The corpus (internal/bench/corpus.go) is a fixed vocabulary: "document" in 99 % of titles,
"test" in 95 % of contents, the reference's other words in 20–25 %, 100 words in ~1 % each and
1,000 words in ~0.1 % each. Each document is owned by its creator, user<k>@bench.example
(k < 1,000), and 10 % are shared (view) with one other of them, so in --auth-mode=required a
token with subject user<k>@bench.example sees ~0.11 % of the corpus.

Content, rows and the next batch are written at once; content files are not fsynced one by
one: the load makes them all durable with one sync of their file system before it reports
done (a crash mid-load can leave rows without content: load again into a fresh system).
With --search-url it waits until the index holds them and reports the index
build rate. Without --database-url the running "docstream dev" is found in
<data-dir>/dev.json, and its blobs in <data-dir>/blobs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Documents <= 0 {
				return fmt.Errorf("--documents must be > 0")
			}
			if o.DatabaseURL == "" {
				st, err := app.ReadDevState(dataDir)
				if errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("no --database-url, and no running dev system in %s (start one with docstream dev)", dataDir)
				}
				if err != nil {
					return err
				}
				o.DatabaseURL = st.DatabaseURL
			}
			if o.BlobURL == "" {
				abs, err := filepath.Abs(filepath.Join(dataDir, "blobs"))
				if err != nil {
					return err
				}
				o.BlobURL = "file://" + filepath.ToSlash(abs)
			}
			o.Progress = e.stderr
			res, err := bench.Load(cmd.Context(), o)
			if err != nil {
				return err
			}
			if output == outputJSON {
				return json.NewEncoder(e.stdout).Encode(res)
			}
			fmt.Fprintf(e.stdout, "loaded %d documents (%d shares) in %s (%.0f docs/s)\n", res.Documents, res.Shares, res.Load.Round(time.Millisecond), res.LoadRate)
			if o.SearchURL != "" {
				state := ""
				if res.IndexTimedOut {
					state = " (gave up waiting)"
				}
				fmt.Fprintf(e.stdout, "indexed %d in %s from the load's start (%.0f docs/s)%s\n", res.Indexed, res.IndexWait.Round(time.Millisecond), res.IndexRate, state)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&o.Documents, "documents", 0, "how many documents to add")
	fs.IntVar(&o.From, "from", 0, "corpus number of the first document (to add more to an earlier load, pass its count)")
	fs.IntVar(&o.Batch, "batch", 10000, "rows per COPY transaction")
	fs.IntVar(&o.Workers, "workers", 32, "concurrent content writes")
	fs.DurationVar(&o.IndexTimeout, "index-timeout", 0, "with --search-url: how long to wait for the index (0: 5 minutes or 1 ms per document, the longer)")
	fs.StringVar(&o.DatabaseURL, "database-url", "", "PostgreSQL, directly (default: the running dev system's)")
	fs.StringVar(&o.BlobURL, "blob-url", "", "the document service's object storage (default: file://<data-dir>/blobs)")
	fs.StringVar(&dataDir, "data-dir", "./var", "where docstream dev keeps dev.json and blobs")
	fs.StringVar(&o.SearchURL, "search-url", "", "the search service (e.g. http://localhost:8003): wait until the documents are indexed")
	fs.StringVarP(&output, "output", "o", outputText, "text or json")
	config.NoEnv(fs)
	return cmd
}

// newBenchIndexWaitCmd is `docstream bench index-wait`: the index build
// rate of a corpus loaded before the change stream started (its snapshot
// publishes every row as an "r" event), from this command's start.
func newBenchIndexWaitCmd(e *env) *cobra.Command {
	var (
		searchURL string
		documents int64
		timeout   time.Duration
		output    string
	)
	cmd := &cobra.Command{
		Use:   "index-wait",
		Short: "Wait until the search index holds --documents documents, with a progress line; report the build rate",
		Long: `Poll the search service's index (the sum of /aggregations/status) until it holds --documents
documents or --timeout passes, printing the rate and time left once a second, and report the
build rate from this command's start. Start it with the system whose change stream snapshots an
already loaded corpus ("docstream bench load" into a system started without the cdc target):
a search service not answering yet counts as an empty index.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if documents <= 0 {
				return fmt.Errorf("--documents must be > 0")
			}
			start := time.Now()
			n, err := bench.WaitIndexed(cmd.Context(), strings.TrimRight(searchURL, "/"), documents, start.Add(timeout), e.stderr)
			if err != nil {
				return err
			}
			el := time.Since(start)
			res := struct {
				Indexed  int64         `json:"indexed"`
				Wait     time.Duration `json:"wait_ns"`
				Rate     float64       `json:"docs_per_s"`
				TimedOut bool          `json:"timed_out,omitempty"`
			}{n, el, float64(n) / el.Seconds(), n < documents}
			if output == outputJSON {
				return json.NewEncoder(e.stdout).Encode(res)
			}
			state := ""
			if res.TimedOut {
				state = " (gave up waiting)"
			}
			fmt.Fprintf(e.stdout, "indexed %d in %s (%.0f docs/s)%s\n", n, el.Round(time.Millisecond), res.Rate, state)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&searchURL, "search-url", "http://localhost:8003", "the search service")
	fs.Int64Var(&documents, "documents", 0, "how many documents the index must hold")
	fs.DurationVar(&timeout, "timeout", 30*time.Minute, "give up after this long")
	fs.StringVarP(&output, "output", "o", outputText, "text or json")
	config.NoEnv(fs)
	return cmd
}
