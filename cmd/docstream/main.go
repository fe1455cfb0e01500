// Command docstream is the whole system in one binary: `docstream dev` runs
// every service in one process with embedded defaults; `docstream serve
// --targets=…` runs chosen services against configured backends; the other
// commands are operator and user tools. main only wires; run is testable.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/docstream/docstream/internal/extract"
)

func main() {
	// An extraction child (internal/extract) runs its one job and exits
	// here, before any command is parsed.
	extract.ChildMain()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "docstream:", err)
		os.Exit(1)
	}
}

// run executes the command line args as the binary would.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	root := newRootCmd(getenv, stdout, stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
