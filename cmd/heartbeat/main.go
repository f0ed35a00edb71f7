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
	// A signal cancels the context, so a probe or server in flight stops
	// cleanly and records what it has.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := cli.DefaultApp(version, term.IsTerminal(int(os.Stdout.Fd())))
	code := cli.Main(ctx, app, os.Args[1:])
	stop()
	os.Exit(code)
}
