// Package cli holds heartbeat's commands. Each command is an options struct,
// a constructor binding flags to it, and a run function; input and output
// come in through App, so a test runs the whole program in-process and reads
// what it printed.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/config"
	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/backend"
)

// App is the program's environment: its streams, its environment variables
// and the facts about the host that commands need.
type App struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// Getenv reads the environment; tests pass a map's lookup.
	Getenv config.Getenv
	// Home is the user's home directory ("" if unknown).
	Home string
	// OutIsTerminal says whether Out is a terminal (for colour).
	OutIsTerminal bool
	// OutIsFile and ErrIsFile say whether Out and Err are regular files
	// (cron's `>> probe.log 2>&1`), for --log-timestamps=auto.
	OutIsFile, ErrIsFile bool
	// Version is the build's version string.
	Version string
}

// globalOptions are the flags every command shares.
type globalOptions struct {
	DB             string
	ConnectTimeout time.Duration
	LogFormat      string
	// LogTimestamps is --log-timestamps: auto, always or never.
	LogTimestamps string
	// stampOut and stampErr wrap the App's streams; PersistentPreRunE
	// switches them on as LogTimestamps decides (nil: never).
	stampOut, stampErr *stampWriter
	// log is the one logger, built by the root command from --log-format
	// before any command runs; logLevel is its level (Info unless a
	// command's own flag lowers it).
	log      *slog.Logger
	logLevel slog.LevelVar
}

// Main runs the program with args (without the program name) and returns
// the exit code. Errors are printed here, once, as one line.
func Main(ctx context.Context, app *App, args []string) int {
	// Every line, the error line below included, goes through writers
	// that can start it with its time (--log-timestamps).
	stamped := *app
	stampOut, stampErr := newStampWriter(app.Out), newStampWriter(app.Err)
	stamped.Out, stamped.Err = stampOut, stampErr
	app = &stamped
	root := newRootCommand(app, stampOut, stampErr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	// status is a monitoring plugin: with --check an error is also the
	// one line a Nagios/Icinga reads on stdout.
	check := isStatusCommand(cmd) && !IsSilent(err) && statusCheckMode(cmd, args)
	if code, ie, ok := interruptCode(ctx); ok {
		// One code for a signal, whatever the command and its flags.
		msg := oneLine(err)
		if !strings.Contains(msg, ie.Error()) {
			msg = ie.Error() + ": " + msg
		}
		if check {
			fmt.Fprintln(app.Out, pluginLine(status.ExitUnknown, msg, nil))
		}
		fmt.Fprintf(app.Err, "heartbeat: %s\n", msg)
		return code
	}
	if IsSilent(err) {
		return ExitCode(err)
	}
	if check {
		fmt.Fprintln(app.Out, pluginLine(status.ExitUnknown, strings.ReplaceAll(oneLine(err), "\n", "; "), nil))
	} else {
		fmt.Fprintf(app.Err, "heartbeat: %s\n", oneLine(err))
	}
	if code, ok := failureCode(cmd); ok {
		return code
	}
	return ExitCode(err)
}

// Default total deadlines (--timeout) per command. Commands missing here
// get defaultCommandTimeout; probe-ssh's total is its --deadline (plus the
// bounded store calls around it), push bounds each attempt with its own
// --timeout, and serve-api runs until stopped, each request's store calls
// bounded by the API's store timeout.
const defaultCommandTimeout = 30 * time.Second

var commandTimeouts = map[string]time.Duration{
	"heartbeat status":         10 * time.Second,
	"heartbeat migrate":        5 * time.Minute,
	"heartbeat servers import": 2 * time.Minute,
	"heartbeat doctor":         time.Minute,
	"heartbeat probe-ssh":      0,
	"heartbeat push":           0,
	"heartbeat serve-api":      0,
	"heartbeat version":        0,
}

// addTimeouts gives every command that talks to the store a --timeout: a
// total deadline, so a locked table or a stopped database never leaves a
// cron job or a Nagios check hanging. On expiry the command fails with one
// line naming what it waited for and its usual failure exit code.
func addTimeouts(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		addTimeouts(c)
	}
	if cmd.RunE == nil || !cmd.HasParent() {
		return
	}
	def, ok := commandTimeouts[cmd.CommandPath()]
	if !ok {
		def = defaultCommandTimeout
	}
	if def == 0 {
		return
	}
	limit := new(time.Duration)
	cmd.Flags().DurationVar(limit, "timeout", def, "give up after this long in total, naming what it waited for (0: no limit)")
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *limit < 0 {
			return usageErrorf("--timeout must not be negative, got %s", *limit)
		}
		if *limit == 0 {
			return run(cmd, args)
		}
		parent := cmd.Context()
		ctx, cancel := context.WithTimeout(parent, *limit)
		defer cancel()
		cmd.SetContext(ctx)
		err := run(cmd, args)
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && parent.Err() == nil {
			return &deadlineError{command: strings.TrimPrefix(cmd.CommandPath(), "heartbeat "), limit: *limit, err: err}
		}
		return err
	}
}

// oneLine keeps an error to a single line for cron mail and terminals;
// joined errors (an import's bad rows) keep their own lines.
func oneLine(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	for i, l := range lines {
		// An error may quote a stored name, a peer's banner or a
		// driver's text: none of it may move the cursor or forge lines in
		// cron mail.
		lines[i] = output.Escape(l)
	}
	return strings.Join(lines, "\n")
}

// NewRootCommand builds the command tree.
func NewRootCommand(app *App) *cobra.Command { return newRootCommand(app, nil, nil) }

func newRootCommand(app *App, stampOut, stampErr *stampWriter) *cobra.Command {
	g := &globalOptions{stampOut: stampOut, stampErr: stampErr}
	root := &cobra.Command{
		Use:   "heartbeat",
		Short: "Tell which servers are alive, every 30 seconds",
		Long: `heartbeat records a heartbeat for every server that answers an SSH login
(probe-ssh, run from cron) or pushes one over HTTP, and reports each server as
ONLINE, WARNING or OFFLINE.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       app.Version,
	}
	root.SetIn(app.In)
	root.SetOut(app.Out)
	root.SetErr(app.Err)
	root.SetVersionTemplate("heartbeat {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageErrorf("%v", err)
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.DB, "db", "", "store: postgres://… URL, host=… keyword/value string, sqlite:PATH or a PATH ending in .db (env HEARTBEAT_DB, DATABASE_URL, POSTGRES_*)")
	pf.DurationVar(&g.ConnectTimeout, "connect-timeout", 5*time.Second, "give up reaching the store after this long")
	pf.StringVar(&g.LogFormat, "log-format", "text", "log format on stderr: text or json")
	stampDefault := app.Getenv("HEARTBEAT_LOG_TIMESTAMPS")
	if stampDefault == "" {
		stampDefault = stampAuto
	}
	pf.StringVar(&g.LogTimestamps, "log-timestamps", stampDefault, "start every output line with its RFC 3339 UTC time: auto (probe-ssh writing into a log file), always or never (env HEARTBEAT_LOG_TIMESTAMPS)")

	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if g.LogFormat != "text" && g.LogFormat != "json" {
			return usageErrorf("--log-format must be text or json, got %q", g.LogFormat)
		}
		switch g.LogTimestamps {
		case stampAuto, stampAlways, stampNever:
		default:
			return usageErrorf("--log-timestamps must be auto, always or never, got %q", g.LogTimestamps)
		}
		errStamped := false
		if g.stampErr != nil {
			// JSON log lines carry their own time and must stay JSON.
			errStamped = stampsFor(g.LogTimestamps, app.ErrIsFile, cmd.CommandPath(), g.LogFormat == "json")
			g.stampErr.enable(errStamped)
		}
		if g.stampOut != nil {
			jsonOut := false
			if f := cmd.Flags().Lookup("json"); f != nil {
				jsonOut = f.Value.String() == "true"
			}
			g.stampOut.enable(stampsFor(g.LogTimestamps, app.OutIsFile, cmd.CommandPath(), jsonOut))
		}
		g.log = newLogger(app.Err, g.LogFormat, &g.logLevel, errStamped)
		return nil
	}
	root.AddCommand(
		newProbeCommand(app, g),
		newServersCommand(app, g),
		newAlertCommand(app, g),
		newMaintenanceCommand(app, g),
		newStatusCommand(app, g),
		newEvaluateCommand(app, g),
		newHistoryCommand(app, g),
		newUptimeCommand(app, g),
		newMigrateCommand(app, g),
		newServeCommand(app, g),
		newPushCommand(app),
		newDoctorCommand(app, g),
		newNotifyCommand(app, g),
		newConfigCommand(app, g),
		newVersionCommand(app),
	)
	addTimeouts(root)
	// Unknown subcommands and stray arguments are usage errors too.
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return nil
	}
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	return root
}

// exactArgs is cobra.ExactArgs with a usage exit code and the argument
// names in the message.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usageErrorf("%s takes %d argument(s): %s (got %d)", cmd.CommandPath(), len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// openStore opens the configured store. A Postgres schema that is behind
// stops every command but migrate, naming the fix.
func openStore(ctx context.Context, app *App, g *globalOptions) (backend.Store, error) {
	s, err := openStoreAllowBehind(ctx, app, g)
	if errors.Is(err, store.ErrSchemaBehind) {
		s.Close()
		return nil, err
	}
	return s, err
}

func openStoreAllowBehind(ctx context.Context, app *App, g *globalOptions) (backend.Store, error) {
	cfg, err := config.ResolveStore(g.DB, app.Getenv, app.Home)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	s, err := backend.Open(ctx, storeTarget(cfg, g.ConnectTimeout))
	if err != nil && s == nil {
		return nil, fmt.Errorf("%w (store chosen by %s)", err, cfg.Origin)
	}
	return s, err
}

// withServer opens the store, finds the server ref names (ID or NAME) and
// runs fn with both: the common shape of every per-server command.
func withServer(ctx context.Context, app *App, g *globalOptions, ref string, fn func(backend.Store, store.Server) error) error {
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	sv, err := resolveServer(ctx, s, ref)
	if err != nil {
		return err
	}
	return fn(s, sv)
}

// resolveServer finds a server by id (all digits) or name. Names cannot be
// all digits, so the two never collide.
func resolveServer(ctx context.Context, s store.Store, ref string) (store.Server, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		sv, err := s.Server(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return store.Server{}, fmt.Errorf("no server with id %d", id)
		}
		return sv, err
	}
	sv, err := s.ServerByName(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		return store.Server{}, fmt.Errorf("no server named %q", ref)
	}
	return sv, err
}

// palette decides whether to colour: only on a terminal, and never when
// NO_COLOR is set to a non-empty value (https://no-color.org).
func palette(app *App) output.Palette {
	return output.Palette{Enabled: app.OutIsTerminal && app.Getenv("NO_COLOR") == ""}
}

// DefaultApp is the App of a real process.
func DefaultApp(version string, outIsTerminal bool) *App {
	home, _ := os.UserHomeDir()
	return &App{
		In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		Getenv: os.Getenv, Home: home, OutIsTerminal: outIsTerminal, Version: version,
		OutIsFile: isRegularFile(os.Stdout), ErrIsFile: isRegularFile(os.Stderr),
	}
}
