// Command heartbeat tells an operations team which of their servers are
// alive. All logic lives in pkg/; this file only wires the process to it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/stacksense/heartbeat/pkg/cli"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	// A signal cancels the context with the signal as its cause, so a
	// probe or server in flight stops cleanly, records what it has, and
	// the process exits 128+signal (130 for SIGINT, 143 for SIGTERM). A
	// second signal kills the process at once.
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		signal.Stop(sigs)
		cancel(cli.Interrupted(sig.(syscall.Signal)))
	}()
	app := cli.DefaultApp(version, term.IsTerminal(int(os.Stdout.Fd())))
	code := cli.Main(ctx, app, os.Args[1:])
	cancel(nil)
	os.Exit(code)
}
