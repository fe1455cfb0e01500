package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/docstream/docstream/internal/localstack"
	"github.com/docstream/docstream/internal/logging"
	"github.com/docstream/docstream/internal/testenv"
)

// cdcChildEnv makes the test binary a child process running the cdc target
// alone (see TestTheActiveCDCProcessKilledUnderLoadIsReplacedByItsStandby),
// until it is killed.
const cdcChildEnv = "DOCSTREAM_TEST_CDC_CHILD"

// TestTheActiveCDCProcessKilledUnderLoadIsReplacedByItsStandby runs the
// write path as separate processes over a 3-node nats-server cluster: two
// `cdc` processes (one active, one hot standby) and document, indexer and
// search in this one. Under a steady load of creates, the active CDC
// process is killed (SIGKILL): the standby takes the lock and streams
// from the slot, documents created after the kill become searchable,
// every change is on the bus exactly once and the indexer catches up.
func TestTheActiveCDCProcessKilledUnderLoadIsReplacedByItsStandby(t *testing.T) {
	nats, c := natsClusterConfig(t)
	c.Targets = "document,indexer,search"

	cdcAddr := func() string {
		p, err := localstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("127.0.0.1:%d", p)
	}
	startCDC := func(name string) (*exec.Cmd, string) {
		addr := cdcAddr()
		cmd := exec.Command(os.Args[0], "-test.run=^TestCDCChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), cdcChildEnv+"="+name, "DOCSTREAM_TEST_DB="+c.Shared.DatabaseURL,
			"DOCSTREAM_TEST_BUS="+nats.URL(), "DOCSTREAM_TEST_SLOT="+c.CDC.Slot, "DOCSTREAM_TEST_ADDR="+addr,
			"DOCSTREAM_TEST_DIR="+testenv.TempDir(t))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, "http://" + addr
	}
	role := testenv.CDCRole

	first, firstURL := startCDC("first")
	testenv.WaitFor(t, "the first cdc process to be active", func() bool { return role(firstURL) == "active" })
	_, secondURL := startCDC("second")
	testenv.WaitFor(t, "the second cdc process to be a ready standby", func() bool { return role(secondURL) == "standby" })

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *System, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, logging.Discard(), func(s *System) { ready <- s }) }()
	var sys *System
	select {
	case sys = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done })

	word := "takeover" + fmt.Sprint(time.Now().UnixNano()%100000)
	searchable := func() int64 { return searchHits(sys, word) }
	load := startCreateLoad(t, sys, word)
	waitFor(t, 60*time.Second, "documents searchable before the kill", func() bool { return searchable() >= 40 })

	killed := time.Now()
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	atKill := load.created.Load()
	testenv.WaitFor(t, "the standby to become active", func() bool { return role(secondURL) == "active" })
	activeAfter := time.Since(killed)
	waitFor(t, 60*time.Second, "documents created after the kill to be searchable", func() bool { return searchable() >= atKill+40 })
	t.Logf("active cdc process killed; the standby active %v later, documents created after the kill searchable %v later (loaded 2-core machine)",
		activeAfter.Round(100*time.Millisecond), time.Since(killed).Round(100*time.Millisecond))
	load.Stop()
	total := load.created.Load()
	if n := load.failed.Load(); n > 0 {
		t.Errorf("%d creates failed while a cdc process died (they never touch it)", n)
	}
	waitFor(t, 60*time.Second, "the indexer to catch up with every document", func() bool { return searchable() == total })

	// No change lost or stored twice on the bus.
	nc, err := natsgo.Connect(nats.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(context.Background(), "CDC")
	if err != nil {
		t.Fatal(err)
	}
	seen := documentChanges(t, s)
	if seen != total {
		t.Fatalf("the bus holds %d document changes for %d creates", seen, total)
	}
}

// TestCDCChild is the child process of
// TestTheActiveCDCProcessKilledUnderLoadIsReplacedByItsStandby: the cdc
// target alone, until killed.
func TestCDCChild(t *testing.T) {
	if os.Getenv(cdcChildEnv) == "" {
		t.Skip("run by TestTheActiveCDCProcessKilledUnderLoadIsReplacedByItsStandby")
	}
	c := parse(t, nil, "--data-dir", os.Getenv("DOCSTREAM_TEST_DIR"), "--database-url", os.Getenv("DOCSTREAM_TEST_DB"),
		"--bus-url", os.Getenv("DOCSTREAM_TEST_BUS"), "--bus-replicas", "3", "--bus-publish-timeout", "1s",
		"--targets", "cdc", "--cdc-addr", os.Getenv("DOCSTREAM_TEST_ADDR"), "--cdc-slot", os.Getenv("DOCSTREAM_TEST_SLOT"),
		"--cdc-standby-poll", "250ms", "--auth-mode", "open", "--shutdown-drain", "0")
	if err := Run(context.Background(), c, logging.New(os.Stderr, "warn"), func(*System) {}); err != nil {
		t.Fatal(err)
	}
}
