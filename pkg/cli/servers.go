package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/hostkey"
	"github.com/stacksense/heartbeat/pkg/inventory"
	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/backend"
)

func newServersCommand(app *App, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "servers",
		Short: "Register, list and remove the servers to watch",
		Args:  exactArgs(),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newServersAddCommand(app, g),
		newServersListCommand(app, g),
		newServersShowCommand(app, g),
		newServersRemoveCommand(app, g),
		newServersEnableCommand(app, g, true),
		newServersEnableCommand(app, g, false),
		newServersImportCommand(app, g),
		newServersSetCommand(app, g),
		newServersTrustCommand(app, g),
		newServersModeCommand(app, g),
		newServersTokenCommand(app, g),
	)
	return cmd
}

type serversAddOptions struct {
	Host       string
	Port       int
	User       string
	KeyPath    string
	Mode       string
	StaleAfter time.Duration
}

func newServersAddCommand(app *App, g *globalOptions) *cobra.Command {
	o := &serversAddOptions{}
	cmd := &cobra.Command{
		Use:   "add NAME --host HOST [--port 22] [--user USER] [--key PATH] [--mode ssh|push] [--stale-after 60s]",
		Short: "Register a server",
		Example: `  heartbeat servers add web1 --host 10.0.0.5
  heartbeat servers add db1 --host db1.internal --port 2222 --user monitor --key /etc/heartbeat/id_ed25519
  heartbeat servers add batch7 --host 10.0.3.7 --mode push --stale-after 5m`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServersAdd(cmd.Context(), app, g, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Host, "host", "", "hostname or IP address to SSH to (required)")
	f.IntVar(&o.Port, "port", store.DefaultPort, "SSH port")
	f.StringVar(&o.User, "user", "", "SSH login (default: the prober's --user)")
	f.StringVar(&o.KeyPath, "key", "", "private key for this server (default: the prober's key)")
	f.StringVar(&o.Mode, "mode", store.ModeSSH, "ssh (probe-ssh logs in to it) or push (it pushes its own heartbeats; probe-ssh skips it)")
	f.DurationVar(&o.StaleAfter, "stale-after", store.DefaultStaleAfter, "OFFLINE when its last heartbeat is older than this (1s-720h)")
	return cmd
}

func runServersAdd(ctx context.Context, app *App, g *globalOptions, name string, o *serversAddOptions) error {
	spec := store.ServerSpec{Name: name, Host: o.Host, Port: o.Port, User: o.User, KeyPath: o.KeyPath, Mode: o.Mode, StaleAfter: o.StaleAfter}
	if o.StaleAfter == 0 {
		return usageErrorf("server %q: --stale-after 0 is outside 1s-720h", name)
	}
	if o.Port == 0 {
		// 0 means "default" inside the store; on the command line it is a
		// mistake.
		return usageErrorf("server %q: port 0 is out of range 1-65535", name)
	}
	if err := spec.Validate(); err != nil {
		return usageErrorf("%v", err)
	}
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	sv, err := s.AddServer(ctx, spec)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("a server named %q already exists", name)
	}
	if err != nil {
		return err
	}
	if _, err = fmt.Fprintf(app.Out, "added server %s (id %d) at %s\n", output.Escape(sv.Name), sv.ID, net.JoinHostPort(sv.Host, strconv.Itoa(sv.Port))); err != nil {
		return err
	}
	warnUnreadableKey(app, sv.Name, o.KeyPath)
	warnShortStaleAfter(app, sv)
	return nil
}

// probeInterval is how often the crontab lines of setup_heartbeat_cron.sh
// run probe-ssh.
const probeInterval = 30 * time.Second

// warnShortStaleAfter warns when an ssh server's window is shorter than
// the probe interval: it would go OFFLINE between two healthy probes.
func warnShortStaleAfter(app *App, sv store.Server) {
	if sv.Mode == store.ModeSSH && sv.StaleAfter < probeInterval {
		fmt.Fprintf(app.Err, "warning: server %s: --stale-after %s is shorter than the %s probe interval, so it goes OFFLINE between healthy probes\n",
			output.Escape(sv.Name), sv.StaleAfter, probeInterval)
	}
}

// warnUnreadableKey warns on stderr when a server's key file cannot be
// read by the user running this command. It is only a warning: probe-ssh
// may run as another user who can read it; if not, that server fails with
// class key and the others are probed as usual.
func warnUnreadableKey(app *App, name, path string) {
	if path == "" {
		return
	}
	f, err := os.Open(path)
	if err == nil {
		_, err = f.Read(make([]byte, 1))
		f.Close()
	}
	if err == nil {
		return
	}
	who := "this user"
	if u, uerr := user.Current(); uerr == nil {
		who = "user " + u.Username
	}
	fmt.Fprintf(app.Err, "warning: server %s: key %s is not readable by %s (%s); probe-ssh fails this server with class key unless it runs as a user who can read it\n",
		output.Escape(name), output.Escape(path), who, output.Escape(readErrReason(err)))
}

// readErrReason is the reason without the path os.PathError repeats.
func readErrReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

type serversListOptions struct{ JSON bool }

// serverJSON is one server in `servers list --json`; a documented, stable
// schema.
type serverJSON struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Host    string `json:"host"`
	Port    int    `json:"port"`
	User    string `json:"user"`
	Key     string `json:"key"`
	Mode    string `json:"mode"`
	Enabled bool   `json:"enabled"`
	// TokenlessFrom lists the networks the server may push from without
	// a token (CIDR notation); [] when that is off, the default.
	TokenlessFrom []string  `json:"tokenless_from"`
	CreatedAt     time.Time `json:"created_at"`
}

func newServersListCommand(app *App, g *globalOptions) *cobra.Command {
	o := &serversListOptions{}
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List registered servers",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServersList(cmd.Context(), app, g, o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print a JSON array")
	return cmd
}

func runServersList(ctx context.Context, app *App, g *globalOptions, o *serversListOptions) error {
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	list, err := s.Servers(ctx)
	if err != nil {
		return err
	}
	if o.JSON {
		out := make([]serverJSON, 0, len(list))
		for _, sv := range list {
			tokenless := make([]string, len(sv.TokenlessFrom))
			for i, p := range sv.TokenlessFrom {
				tokenless[i] = p.String()
			}
			out = append(out, serverJSON{ID: sv.ID, Name: sv.Name, Host: sv.Host, Port: sv.Port, User: sv.User, Key: sv.KeyPath, Mode: sv.Mode, Enabled: sv.Enabled,
				TokenlessFrom: tokenless, CreatedAt: sv.CreatedAt})
		}
		return output.JSON(app.Out, out)
	}
	if len(list) == 0 {
		_, err := fmt.Fprintln(app.Out, "no servers registered; add one with `heartbeat servers add NAME --host HOST`")
		return err
	}
	rows := make([][]string, 0, len(list))
	for _, sv := range list {
		rows = append(rows, []string{strconv.FormatInt(sv.ID, 10), sv.Name, sv.Host, strconv.Itoa(sv.Port), sv.User, sv.KeyPath, sv.Mode, yesNo(sv.Enabled)})
	}
	return output.TableWith(app.Out, []string{"ID", "NAME", "HOST", "PORT", "USER", "KEY", "MODE", "ENABLED"}, rows, tableOptions(app))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// serversShowOptions is `servers show`'s input: the server, by id or name.
type serversShowOptions struct{ Ref string }

func newServersShowCommand(app *App, g *globalOptions) *cobra.Command {
	o := &serversShowOptions{}
	return &cobra.Command{
		Use:   "show ID|NAME",
		Short: "Show one server in full, with its pinned host key",
		Args:  exactArgs("ID|NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ref = args[0]
			return runServersShow(cmd.Context(), app, g, o)
		},
	}
}

func runServersShow(ctx context.Context, app *App, g *globalOptions, o *serversShowOptions) error {
	return withServer(ctx, app, g, o.Ref, func(_ backend.Store, sv store.Server) error {
		rows := [][]string{
			{"id", strconv.FormatInt(sv.ID, 10)},
			{"name", sv.Name},
			{"host", sv.Host},
			{"port", strconv.Itoa(sv.Port)},
			{"user", sv.User},
			{"key", sv.KeyPath},
			{"mode", sv.Mode},
			{"enabled", yesNo(sv.Enabled)},
			{"stale after", sv.StaleAfter.String()},
			{"created", sv.CreatedAt.Format(time.RFC3339)},
			{"token-less pushes", tokenlessText(sv.TokenlessFrom)},
		}
		if sv.HostKeyIsCA {
			rows = append(rows, []string{"pinned CA", fingerprint(sv.HostKey, "") + " (accepts host certificates it signed for " + sv.Host + ")"})
		} else {
			rows = append(rows, []string{"host key", fingerprint(sv.HostKey, "not pinned yet (pinned by the first successful probe)")})
		}
		if sv.SeenHostKey != nil {
			rows = append(rows, []string{"last seen key", fingerprint(sv.SeenHostKey, "")})
		}
		return writeFields(app.Out, rows)
	})
}

// fingerprint renders a stored host key the way OpenSSH prints it, or none
// when there is no key.
func fingerprint(wire []byte, none string) string {
	if wire == nil {
		return none
	}
	fp, err := hostkey.Fingerprint(wire)
	if err != nil {
		return "unreadable stored key: " + err.Error()
	}
	return fp
}

func writeFields(w io.Writer, rows [][]string) error {
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	for _, r := range rows {
		v := output.Escape(r[1])
		if v == "" {
			v = "-"
		}
		if _, err := fmt.Fprintf(w, "%-*s  %s\n", width+1, r[0]+":", v); err != nil {
			return err
		}
	}
	return nil
}

// serversRemoveOptions is `servers remove`'s input: the server, and the
// confirmation the removal needs.
type serversRemoveOptions struct {
	Ref string
	Yes bool
}

func newServersRemoveCommand(app *App, g *globalOptions) *cobra.Command {
	o := &serversRemoveOptions{}
	cmd := &cobra.Command{
		Use:   "remove ID|NAME --yes",
		Short: "Remove a server with its heartbeats and alerts",
		Args:  exactArgs("ID|NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ref = args[0]
			return runServersRemove(cmd.Context(), app, g, o)
		},
	}
	cmd.Flags().BoolVar(&o.Yes, "yes", false, "confirm the removal")
	return cmd
}

func runServersRemove(ctx context.Context, app *App, g *globalOptions, o *serversRemoveOptions) error {
	return withServer(ctx, app, g, o.Ref, func(s backend.Store, sv store.Server) error {
		// Stored names are escaped: a row written before validation (or by
		// hand) must not repaint the terminal.
		if !o.Yes {
			return usageErrorf("removing server %s (id %d) also deletes its heartbeats and alerts; run again with --yes", output.Escape(sv.Name), sv.ID)
		}
		if err := s.RemoveServer(ctx, sv.ID); err != nil {
			return err
		}
		_, err := fmt.Fprintf(app.Out, "removed server %s (id %d)\n", output.Escape(sv.Name), sv.ID)
		return err
	})
}

// serversEnableOptions is the input of `servers enable` and `servers
// disable`: the server, and which of the two was asked for.
type serversEnableOptions struct {
	Ref    string
	Enable bool
}

func newServersEnableCommand(app *App, g *globalOptions, enable bool) *cobra.Command {
	o := &serversEnableOptions{Enable: enable}
	verb, short := "enable", "Resume probing a server and counting it in status"
	if !enable {
		verb, short = "disable", "Stop probing a server; status shows it DISABLED, never down"
	}
	return &cobra.Command{
		Use:   verb + " ID|NAME",
		Short: short,
		Args:  exactArgs("ID|NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ref = args[0]
			return runServersEnable(cmd.Context(), app, g, o)
		},
	}
}

func runServersEnable(ctx context.Context, app *App, g *globalOptions, o *serversEnableOptions) error {
	verb := "enabled"
	if !o.Enable {
		verb = "disabled"
	}
	return withServer(ctx, app, g, o.Ref, func(s backend.Store, sv store.Server) error {
		if err := s.SetServerEnabled(ctx, sv.ID, o.Enable); err != nil {
			return err
		}
		_, err := fmt.Fprintf(app.Out, "%s server %s (id %d)\n", verb, output.Escape(sv.Name), sv.ID)
		return err
	})
}

// serversImportOptions is `servers import`'s input: the file ("-" for
// stdin).
type serversImportOptions struct{ File string }

func newServersImportCommand(app *App, g *globalOptions) *cobra.Command {
	o := &serversImportOptions{}
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Add or update servers from a CSV file (- for stdin), all or nothing",
		Long: `Reads a CSV file with the header name,host,port,user,key (port, user and key
may be empty) and upserts every row by name in one transaction. Any invalid row
(empty name or host, bad port, a name twice) is reported with its line number
and nothing is written.`,
		Example: `  heartbeat servers import fleet.csv
  sshfleet --count 100 --csv - | heartbeat servers import -`,
		Args: exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			return runServersImport(cmd.Context(), app, g, o)
		},
	}
}

func runServersImport(ctx context.Context, app *App, g *globalOptions, o *serversImportOptions) error {
	file := o.File
	var r io.Reader = app.In
	name := "stdin"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		r, name = f, file
	}
	specs, err := inventory.ParseCSV(r)
	if err != nil {
		// One problem stays on one line (cron mail, scripts); several get
		// a line each under a heading.
		if !strings.Contains(err.Error(), "\n") {
			return fmt.Errorf("import %s: %w; nothing written", name, err)
		}
		return fmt.Errorf("import %s: nothing written:\n%w", name, err)
	}
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.ImportServers(ctx, specs)
	if err != nil {
		return fmt.Errorf("import %s: nothing written: %w", name, err)
	}
	_, err = fmt.Fprintf(app.Out, "%d added, %d updated, %d unchanged\n", res.Added, res.Updated, res.Unchanged)
	return err
}

// serversTrustOptions is `servers trust`'s input: the server, and the
// fingerprint to pin or the file holding a CA to pin (both empty: clear
// the pin).
type serversTrustOptions struct {
	Ref         string
	Fingerprint string
	// CA is a file holding a certificate authority's public key, "-" for
	// stdin.
	CA string
}

func newServersTrustCommand(app *App, g *globalOptions) *cobra.Command {
	o := &serversTrustOptions{}
	cmd := &cobra.Command{
		Use:   "trust ID|NAME [--fingerprint SHA256:... | --ca FILE]",
		Short: "Accept a server's changed host key after checking it",
		Long: `Prints the pinned and the last-seen host-key fingerprints of a server, then
clears the pin so the next probe pins whatever key the server presents.
With --fingerprint, pins exactly the last-seen key with that fingerprint
instead, so nothing is trusted blindly in between.

With --ca FILE (a CA's public key, e.g. its .pub file; - reads stdin), pins
that certificate authority instead of a key: under the pin policy the server
is then accepted only when it presents a host certificate the CA signed, valid
now, whose principals include the server's host (one that lists no principals
is refused). A probe never replaces a CA pin; clearing the pin (no flags) ends
it.

Compare the fingerprint with the server's own (ssh-keygen -lf
/etc/ssh/ssh_host_ed25519_key.pub on the server) before trusting it.`,
		Args: exactArgs("ID|NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ref = args[0]
			return runServersTrust(cmd.Context(), app, g, o)
		},
	}
	cmd.Flags().StringVar(&o.Fingerprint, "fingerprint", "", "pin the last-seen key only if it has this SHA256 fingerprint")
	cmd.Flags().StringVar(&o.CA, "ca", "", "pin the certificate authority whose public key is in `FILE` (- for stdin)")
	return cmd
}

func runServersTrust(ctx context.Context, app *App, g *globalOptions, o *serversTrustOptions) error {
	// The CA is read before the store is opened: a bad file is the
	// caller's mistake and changes nothing.
	var ca []byte
	if o.CA != "" {
		if o.Fingerprint != "" {
			return usageErrorf("give --fingerprint or --ca, not both")
		}
		var err error
		if ca, err = readCAKey(app.In, o.CA); err != nil {
			return err
		}
	}
	return withServer(ctx, app, g, o.Ref, func(s backend.Store, sv store.Server) error {
		pinned := []string{"pinned key", fingerprint(sv.HostKey, "none")}
		if sv.HostKeyIsCA {
			pinned[0] = "pinned CA"
		}
		if err := writeFields(app.Out, [][]string{
			pinned,
			{"last seen", fingerprint(sv.SeenHostKey, "none")},
		}); err != nil {
			return err
		}
		if ca != nil {
			if err := s.TrustHostCA(ctx, sv.ID, ca); err != nil {
				return err
			}
			_, err := fmt.Fprintf(app.Out, "pinned CA %s for server %s: it must present a host certificate that CA signed for %s\n",
				fingerprint(ca, ""), output.Escape(sv.Name), output.Escape(sv.Host))
			return err
		}
		var (
			key []byte
			err error
		)
		if o.Fingerprint != "" {
			key, err = keyWithFingerprint(sv, o.Fingerprint)
			if err != nil {
				return err
			}
		}
		if err := s.TrustHostKey(ctx, sv.ID, key); err != nil {
			return err
		}
		if key != nil {
			_, err = fmt.Fprintf(app.Out, "pinned %s for server %s\n", o.Fingerprint, output.Escape(sv.Name))
		} else {
			_, err = fmt.Fprintf(app.Out, "cleared the pin of server %s; the next probe pins the key it sees\n", output.Escape(sv.Name))
		}
		return err
	})
}

// readCAKey reads the CA public key file of `servers trust --ca` ("-":
// in); any problem with it is a usage error naming the file.
func readCAKey(in io.Reader, file string) ([]byte, error) {
	name := file
	var (
		data []byte
		err  error
	)
	if file == "-" {
		name = "stdin"
		data, err = io.ReadAll(io.LimitReader(in, 1<<20))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, usageErrorf("--ca %s: %v", output.Escape(name), err)
	}
	ca, err := hostkey.ParseCAKey(data)
	if err != nil {
		return nil, usageErrorf("--ca %s: %v", output.Escape(name), err)
	}
	return ca, nil
}

// keyWithFingerprint returns the server's last-seen (or pinned) key whose
// fingerprint is fp; a fingerprint matching neither is refused rather than
// pinning a key nobody has seen. A pinned CA is no host key, so it is not
// offered: pinning it as one would match nothing.
func keyWithFingerprint(sv store.Server, fp string) ([]byte, error) {
	pinned := sv.HostKey
	if sv.HostKeyIsCA {
		pinned = nil
	}
	key, err := hostkey.MatchFingerprint(fp, sv.SeenHostKey, pinned)
	if err != nil {
		return nil, usageErrorf("fingerprint %s matches neither the pinned nor the last-seen key of server %s", fp, output.Escape(sv.Name))
	}
	return key, nil
}

// serversModeOptions is `servers mode`'s input: the server and its new
// mode.
type serversModeOptions struct {
	Ref  string
	Mode string
}

func newServersModeCommand(app *App, g *globalOptions) *cobra.Command {
	o := &serversModeOptions{}
	return &cobra.Command{
		Use:   "mode ID|NAME ssh|push",
		Short: "Say how a server's heartbeat arrives: probed over SSH, or pushed by the server",
		Long: `A server in mode ssh (the default) is probed by probe-ssh. A server in mode
push sends its own heartbeats to serve-api (see servers token and push);
probe-ssh leaves it alone, so it collects no SSH failures.`,
		Args: exactArgs("ID|NAME", "ssh|push"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ref, o.Mode = args[0], args[1]
			return runServersMode(cmd.Context(), app, g, o)
		},
	}
}

func runServersMode(ctx context.Context, app *App, g *globalOptions, o *serversModeOptions) error {
	// A bad mode is refused before the store is opened.
	if err := store.ValidateMode(o.Mode); err != nil {
		return usageErrorf("%v", err)
	}
	return withServer(ctx, app, g, o.Ref, func(s backend.Store, sv store.Server) error {
		if err := s.SetServerMode(ctx, sv.ID, o.Mode); err != nil {
			return err
		}
		_, err := fmt.Fprintf(app.Out, "server %s (id %d) is now in mode %s\n", output.Escape(sv.Name), sv.ID, o.Mode)
		return err
	})
}
