package cli

import (
	"context"
	"fmt"
	"net"
	"net/netip"
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
	Ref     string
	Host    string
	Port    int
	User    string
	KeyPath string
	// StaleAfter is the server's freshness window (stale-after).
	StaleAfter time.Duration
	// AllowTokenlessFrom is the raw --allow-tokenless-from list (see
	// store.ParseTokenless); NoTokenless switches token-less pushes off.
	AllowTokenlessFrom string
	NoTokenless        bool
	changed            func(flag string) bool
}

func newServersSetCommand(app *App, g *globalOptions) *cobra.Command {
	o := &serversSetOptions{}
	cmd := &cobra.Command{
		Use:   "set ID|NAME [--host HOST] [--port PORT] [--user USER] [--key PATH] [--stale-after DURATION] [--allow-tokenless-from CIDR[,CIDR]|host | --no-tokenless]",
		Short: "Correct a server's address or credentials, keeping its history",
		Long: `Changes what probe-ssh uses to reach a server without removing it, so its
heartbeat, alerts, token and pinned host key stay. Only the flags given change;
--user "" and --key "" go back to the prober's defaults. A pinned host key is
kept when the address changes: if the new address presents another key, the
server fails with hostkey-mismatch until you compare fingerprints
(servers show) and run servers trust.

--allow-tokenless-from lets the server push its heartbeat without a token, as
the source system's agent (heartbeat_agent.py) does, but only from the
networks listed: CIDR networks or IP addresses separated by commas, or the
word host for the server's --host, which must then be an IP address (trust by
DNS name is refused: a name's records can change or be spoofed). Pushes that
carry a token are judged by the token alone. The list replaces any earlier
one and does not follow later --host changes. It is a migration aid: deploy
tokens with servers token and heartbeat push, then switch it off with
--no-tokenless. servers show prints it; doctor warns while any server has it.`,
		Example: `  heartbeat servers set web1 --host 10.0.0.9
  heartbeat servers set db1 --port 2222 --key /etc/heartbeat/id_ed25519
  heartbeat servers set batch7 --stale-after 5m
  heartbeat servers set web1 --allow-tokenless-from host
  heartbeat servers set web1 --allow-tokenless-from 10.0.0.0/24,192.0.2.7
  heartbeat servers set web1 --no-tokenless`,
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
	f.StringVar(&o.AllowTokenlessFrom, "allow-tokenless-from", "", `accept pushes without a token from these networks: CIDR[,CIDR], IP addresses, or "host" for the server's IP (migration from the source system's agent)`)
	f.BoolVar(&o.NoTokenless, "no-tokenless", false, "switch token-less pushes off again (every push needs the server's token)")
	return cmd
}

func runServersSet(ctx context.Context, app *App, g *globalOptions, o *serversSetOptions) error {
	address := o.changed("host") || o.changed("port") || o.changed("user") || o.changed("key") || o.changed("stale-after")
	tokenless := o.changed("allow-tokenless-from") || o.changed("no-tokenless")
	switch {
	case !address && !tokenless:
		return usageErrorf("servers set %s: nothing to change: give --host, --port, --user, --key, --stale-after, --allow-tokenless-from or --no-tokenless", o.Ref)
	case o.changed("allow-tokenless-from") && o.changed("no-tokenless"):
		return usageErrorf("--allow-tokenless-from and --no-tokenless contradict each other: give one")
	case o.changed("no-tokenless") && !o.NoTokenless:
		return usageErrorf("--no-tokenless takes no value; to allow token-less pushes give --allow-tokenless-from")
	case o.changed("stale-after"):
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
		// Everything is checked before anything is written, so a bad list
		// does not leave the address half changed. "host" means the host
		// this command leaves the server with.
		from := sv.TokenlessFrom
		if o.changed("allow-tokenless-from") {
			var err error
			if from, err = store.ParseTokenless(o.AllowTokenlessFrom, spec.Host); err != nil {
				return usageErrorf("--allow-tokenless-from: server %s: %v", output.Escape(sv.Name), err)
			}
		}
		if o.NoTokenless {
			from = nil
		}
		updated := sv
		if address {
			var err error
			if updated, err = s.UpdateServer(ctx, sv.ID, spec); err != nil {
				return err
			}
		}
		if tokenless {
			if err := s.SetServerTokenless(ctx, sv.ID, from); err != nil {
				return err
			}
			updated.TokenlessFrom = from
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
		if updated.TokenlessFrom != nil {
			// Also after a --host change alone: the list does not follow
			// the host, and the admin should see what it still allows.
			fmt.Fprintf(app.Err, "note: server %s accepts pushes without a token from %s; this is for moving off the source system's agent: issue a token (heartbeat servers token %d), run heartbeat push on the server, then heartbeat servers set %d --no-tokenless\n",
				output.Escape(updated.Name), tokenlessText(updated.TokenlessFrom), updated.ID, updated.ID)
		}
		return nil
	})
}

// tokenlessText is how servers show and servers set print a server's
// token-less allowance.
func tokenlessText(from []netip.Prefix) string {
	if len(from) == 0 {
		return "off"
	}
	return "allowed from " + strings.ReplaceAll(store.FormatTokenless(from), ",", ", ")
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
	field("token-less pushes", tokenlessText(before.TokenlessFrom), tokenlessText(after.TokenlessFrom))
	if len(parts) == 0 {
		return "nothing changed"
	}
	return strings.Join(parts, ", ")
}
