package cli

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/backend"
)

// serversSetOptions are the fields `servers set` changes; only flags the
// admin gave are applied (cobra's Changed), so `--user ""` clears the user.
type serversSetOptions struct {
	Ref        string
	Host       string
	Port       int
	User       string
	KeyPath    string
	StaleAfter time.Duration
	changed    func(flag string) bool
}

func newServersSetCommand(app *App, g *globalOptions) *cobra.Command {
	o := &serversSetOptions{}
	cmd := &cobra.Command{
		Use:   "set ID|NAME [--host HOST] [--port PORT] [--user USER] [--key PATH] [--stale-after DURATION]",
		Short: "Correct a server's address or credentials, keeping its history",
		Long: `Changes what probe-ssh uses to reach a server without removing it, so its
heartbeat, alerts, token and pinned host key stay. Only the flags given change;
--user "" and --key "" go back to the prober's defaults. A pinned host key is
kept when the address changes: if the new address presents another key, the
server fails with hostkey-mismatch until you compare fingerprints
(servers show) and run servers trust.`,
		Example: `  heartbeat servers set web1 --host 10.0.0.9
  heartbeat servers set db1 --port 2222 --key /etc/heartbeat/id_ed25519
  heartbeat servers set batch7 --stale-after 5m`,
		Args: exactArgs("ID|NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ref, o.changed = args[0], cmd.Flags().Changed
			return runServersSet(cmd.Context(), app, g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Host, "host", "", "hostname or IP address to SSH to")
	f.IntVar(&o.Port, "port", store.DefaultPort, "SSH port")
	f.StringVar(&o.User, "user", "", `SSH login ("" for the prober's --user)`)
	f.StringVar(&o.KeyPath, "key", "", `private key for this server ("" for the prober's key)`)
	f.DurationVar(&o.StaleAfter, "stale-after", 0, "OFFLINE when its last heartbeat is older than this (1s-720h; default 60s)")
	return cmd
}

func runServersSet(ctx context.Context, app *App, g *globalOptions, o *serversSetOptions) error {
	if !o.changed("host") && !o.changed("port") && !o.changed("user") && !o.changed("key") && !o.changed("stale-after") {
		return usageErrorf("servers set %s: nothing to change: give --host, --port, --user, --key or --stale-after", o.Ref)
	}
	if o.changed("stale-after") {
		if err := store.ValidateStaleAfter(o.StaleAfter); err != nil {
			return usageErrorf("%v", err)
		}
	}
	if o.changed("port") && (o.Port < 1 || o.Port > 65535) {
		return usageErrorf("--port %d is out of range 1-65535", o.Port)
	}
	return withServer(ctx, app, g, o.Ref, func(s backend.Store, sv store.Server) error {
		spec := store.ServerSpec{Name: sv.Name, Host: sv.Host, Port: sv.Port, User: sv.User, KeyPath: sv.KeyPath}
		if o.changed("host") {
			spec.Host = o.Host
		}
		if o.changed("port") {
			spec.Port = o.Port
		}
		if o.changed("user") {
			spec.User = o.User
		}
		if o.changed("key") {
			spec.KeyPath = o.KeyPath
		}
		if o.changed("stale-after") {
			spec.StaleAfter = o.StaleAfter
		}
		if err := spec.Validate(); err != nil {
			return usageErrorf("%v", err)
		}
		updated, err := s.UpdateServer(ctx, sv.ID, spec)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(app.Out, "updated server %s (id %d): %s\n", output.Escape(updated.Name), updated.ID, describeChanges(sv, updated)); err != nil {
			return err
		}
		moved := sv.Host != updated.Host || sv.Port != updated.Port
		switch {
		case updated.HostKeyIsCA && sv.Host != updated.Host:
			// A CA pin follows the name: the certificate must list it.
			fmt.Fprintf(app.Err, "note: server %s keeps its pinned CA; its host certificate must list %s among its principals, else probes fail with hostkey-mismatch\n",
				output.Escape(updated.Name), output.Escape(strings.ToLower(updated.Host)))
		case moved && updated.HostKey != nil && !updated.HostKeyIsCA:
			fmt.Fprintf(app.Err, "note: server %s keeps its pinned host key; if %s presents another, probes fail with hostkey-mismatch: compare fingerprints (heartbeat servers show %d) and run heartbeat servers trust %d\n",
				output.Escape(updated.Name), output.Escape(net.JoinHostPort(updated.Host, strconv.Itoa(updated.Port))), updated.ID, updated.ID)
		}
		if o.changed("key") {
			warnUnreadableKey(app, updated.Name, updated.KeyPath)
		}
		if o.changed("stale-after") {
			warnShortStaleAfter(app, updated)
		}
		return nil
	})
}

// describeChanges lists what an update changed, "old → new", or says that
// nothing did.
func describeChanges(before, after store.Server) string {
	var parts []string
	field := func(name, was, is string) {
		if was == is {
			return
		}
		if was == "" {
			was = "(default)"
		}
		if is == "" {
			is = "(default)"
		}
		parts = append(parts, fmt.Sprintf("%s %s → %s", name, output.Escape(was), output.Escape(is)))
	}
	field("host", before.Host, after.Host)
	field("port", strconv.Itoa(before.Port), strconv.Itoa(after.Port))
	field("user", before.User, after.User)
	field("key", before.KeyPath, after.KeyPath)
	field("stale-after", before.StaleAfter.String(), after.StaleAfter.String())
	if len(parts) == 0 {
		return "nothing changed"
	}
	return strings.Join(parts, ", ")
}
