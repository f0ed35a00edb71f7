package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/deliver"
	"github.com/stacksense/heartbeat/pkg/notify"
	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/store"
)

func newNotifyCommand(app *App, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Notification channels: tell people when servers go down or come back",
		Args:  exactArgs(),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newNotifyAddCommand(app, g), newNotifyListCommand(app, g), newNotifyRemoveCommand(app, g),
		newNotifyTestCommand(app, g), newNotifyDrainCommand(app, g))
	return cmd
}

type notifyAddOptions struct {
	On      string
	Servers string
	All     bool
	Remind  time.Duration
}

func newNotifyAddCommand(app *App, g *globalOptions) *cobra.Command {
	o := &notifyAddOptions{}
	cmd := &cobra.Command{
		Use:   "add NAME URL [--on down,up,warning,maintenance] [--servers A,B | --all] [--remind 1h]",
		Short: "Add a notification channel (prints a webhook channel's signing secret once)",
		Example: `  heartbeat notify add ops 'slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook' --on down,up --remind 1h
  heartbeat notify add oncall 'smtp://user:pass@mail.example.com:587/?from=hb@example.com&to=oncall@example.com'
  heartbeat notify add hook webhook+https://ops.example.com/heartbeat --servers db1,db2 --on down,up,warning`,
		Args: exactArgs("NAME", "URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNotifyAdd(cmd.Context(), app, g, args[0], args[1], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.On, "on", strings.Join(store.DefaultChannelKinds, ","), "kinds of change to send, comma-separated: "+strings.Join(store.ChannelKinds, ", "))
	f.StringVar(&o.Servers, "servers", "", "only these servers (ids or names, comma-separated)")
	f.BoolVar(&o.All, "all", false, "every server, present and future (the default without --servers)")
	f.DurationVar(&o.Remind, "remind", 0, "repeat the down message this often while a server stays OFFLINE (0: never)")
	return cmd
}

// parseKinds splits --on, refusing kinds the store does not know.
func parseKinds(on string) ([]string, error) {
	var kinds []string
	for _, k := range strings.Split(on, ",") {
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "" {
			continue
		}
		if !slices.Contains(store.ChannelKinds, k) {
			return nil, usageErrorf("--on: unknown kind %q (want %s)", k, strings.Join(store.ChannelKinds, ", "))
		}
		kinds = append(kinds, k)
	}
	if len(kinds) == 0 {
		return nil, usageErrorf("--on names no kind (want some of %s)", strings.Join(store.ChannelKinds, ", "))
	}
	return kinds, nil
}

func runNotifyAdd(ctx context.Context, app *App, g *globalOptions, name, rawURL string, o *notifyAddOptions) error {
	kinds, err := parseKinds(o.On)
	if err != nil {
		return err
	}
	if o.All && o.Servers != "" {
		return usageErrorf("give --servers or --all, not both")
	}
	if o.Remind < 0 {
		return usageErrorf("--remind must not be negative, got %s", o.Remind)
	}
	// The URL is checked before anything is stored; its error never
	// quotes the URL's secrets.
	if _, err := notify.New(rawURL, ""); err != nil {
		return usageErrorf("channel %s: %v", output.Escape(name), err)
	}
	kind, _ := notify.ChannelKind(rawURL)
	spec := store.ChannelSpec{Name: name, URL: rawURL, Kinds: kinds, AllServers: o.Servers == "", Remind: o.Remind}
	if kind == "webhook" {
		if spec.Secret, err = deliver.NewSecret(); err != nil {
			return err
		}
	}
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	var names []string
	for _, ref := range strings.Split(o.Servers, ",") {
		if ref = strings.TrimSpace(ref); ref == "" {
			continue
		}
		sv, err := resolveServer(ctx, s, ref)
		if err != nil {
			return withCode(ExitUsage, fmt.Errorf("--servers: %w", err))
		}
		spec.ServerIDs = append(spec.ServerIDs, sv.ID)
		names = append(names, output.Escape(sv.Name))
	}
	if o.Servers != "" && len(spec.ServerIDs) == 0 {
		return usageErrorf("--servers names no server")
	}
	if err := spec.Validate(); err != nil {
		return usageErrorf("%v", err)
	}
	c, err := s.AddChannel(ctx, spec)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("a channel named %q already exists", name)
	}
	if err != nil {
		return err
	}
	scope := "all servers"
	if !c.AllServers {
		scope = strings.Join(names, ", ")
	}
	if _, err := fmt.Fprintf(app.Out, "added channel %s (%s) for %s on %s\n", output.Escape(c.Name), kind, scope, strings.Join(c.Kinds, ",")); err != nil {
		return err
	}
	if c.Secret != "" {
		// Shown once: the store keeps it, no command prints it again.
		_, err = fmt.Fprintf(app.Out, "webhook secret (shown once; the receiver checks the %s header with it): %s\n", notify.SignatureHeader, c.Secret)
	}
	return err
}

type notifyListOptions struct {
	JSON bool
}

// channelJSON is one channel in `notify list --json`. The URL is
// redacted; the secret is never shown.
type channelJSON struct {
	ID            int64     `json:"id"`
	Name          string    `json:"name"`
	Kind          string    `json:"kind"`
	URL           string    `json:"url"`
	On            []string  `json:"on"`
	AllServers    bool      `json:"all_servers"`
	Servers       []string  `json:"servers"`
	RemindSeconds int64     `json:"remind_seconds"`
	Signed        bool      `json:"signed"`
	CreatedAt     time.Time `json:"created_at"`
}

func newNotifyListCommand(app *App, g *globalOptions) *cobra.Command {
	o := &notifyListOptions{}
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List notification channels (URLs redacted)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runNotifyList(cmd.Context(), app, g, o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print a JSON array")
	return cmd
}

func runNotifyList(ctx context.Context, app *App, g *globalOptions, o *notifyListOptions) error {
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	channels, err := s.Channels(ctx)
	if err != nil {
		return err
	}
	out := make([]channelJSON, 0, len(channels))
	for _, c := range channels {
		kind, err := notify.ChannelKind(c.URL)
		if err != nil {
			kind = "unknown"
		}
		out = append(out, channelJSON{ID: c.ID, Name: c.Name, Kind: kind, URL: notify.Redact(c.URL), On: c.Kinds,
			AllServers: c.AllServers, Servers: c.ServerNames, RemindSeconds: int64(c.Remind / time.Second),
			Signed: c.Secret != "", CreatedAt: c.CreatedAt})
	}
	if o.JSON {
		return output.JSON(app.Out, out)
	}
	if len(out) == 0 {
		_, err := fmt.Fprintln(app.Out, "no channels (add one with `heartbeat notify add NAME URL`)")
		return err
	}
	rows := make([][]string, 0, len(out))
	for _, c := range out {
		servers := "all"
		if !c.AllServers {
			servers = strings.Join(c.Servers, ",")
		}
		remind := "-"
		if c.RemindSeconds > 0 {
			remind = (time.Duration(c.RemindSeconds) * time.Second).String()
		}
		rows = append(rows, []string{c.Name, c.Kind, c.URL, strings.Join(c.On, ","), servers, remind})
	}
	return output.TableWith(app.Out, []string{"NAME", "KIND", "URL", "ON", "SERVERS", "REMIND"}, rows, tableOptions(app))
}

type notifyRemoveOptions struct {
	Yes bool
}

func newNotifyRemoveCommand(app *App, g *globalOptions) *cobra.Command {
	o := &notifyRemoveOptions{}
	cmd := &cobra.Command{
		Use:   "remove NAME --yes",
		Short: "Remove a notification channel and its pending deliveries",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNotifyRemove(cmd.Context(), app, g, args[0], o)
		},
	}
	cmd.Flags().BoolVar(&o.Yes, "yes", false, "confirm the removal")
	return cmd
}

func runNotifyRemove(ctx context.Context, app *App, g *globalOptions, name string, o *notifyRemoveOptions) error {
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	c, err := channelByName(ctx, s, name)
	if err != nil {
		return err
	}
	if !o.Yes {
		return usageErrorf("removing channel %s also drops its pending deliveries; run again with --yes", output.Escape(c.Name))
	}
	if err := s.RemoveChannel(ctx, c.ID); err != nil {
		return err
	}
	_, err = fmt.Fprintf(app.Out, "removed channel %s\n", output.Escape(c.Name))
	return err
}

func channelByName(ctx context.Context, s store.Store, name string) (store.Channel, error) {
	c, err := s.ChannelByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.Channel{}, fmt.Errorf("no channel named %q", name)
	}
	return c, err
}

func newNotifyTestCommand(app *App, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "test NAME",
		Short: "Send a clearly marked test message to a channel now and print the outcome (exit 1 if it failed)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNotifyTest(cmd.Context(), app, g, args[0])
		},
	}
}

func runNotifyTest(ctx context.Context, app *App, g *globalOptions, name string) error {
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	c, err := channelByName(ctx, s, name)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	if err := deliver.SendTest(ctx, c, host, notify.DefaultTimeout); err != nil {
		return fmt.Errorf("test message to channel %s failed: %w", output.Escape(c.Name), err)
	}
	_, err = fmt.Fprintf(app.Out, "test message delivered to channel %s (%s)\n", output.Escape(c.Name), notify.Redact(c.URL))
	return err
}

type notifyDrainOptions struct {
	StormThreshold int
}

func newNotifyDrainCommand(app *App, g *globalOptions) *cobra.Command {
	o := &notifyDrainOptions{}
	cmd := &cobra.Command{
		Use:   "drain [--timeout 30s] [--storm 10]",
		Short: "Send due notifications now (probe-ssh and serve-api do this after every evaluation)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runNotifyDrain(cmd.Context(), app, g, o)
		},
	}
	cmd.Flags().IntVar(&o.StormThreshold, "storm", deliver.DefaultStormThreshold, "more events than this for one channel in one drain become one grouped message (0: never group)")
	return cmd
}

func runNotifyDrain(ctx context.Context, app *App, g *globalOptions, o *notifyDrainOptions) error {
	if o.StormThreshold < 0 {
		return usageErrorf("--storm must not be negative, got %d", o.StormThreshold)
	}
	threshold := o.StormThreshold
	if threshold == 0 {
		threshold = -1 // never group
	}
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := deliver.Drain(ctx, s, deliver.Options{StormThreshold: threshold, Log: g.log})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(app.Out, drainSummary(res))
	return err
}

// drainSummary is one line saying what a drain did.
func drainSummary(r deliver.Result) string {
	line := fmt.Sprintf("queued %d (%d reminders), sent %d messages: delivered %d, failed %d (retried later), gave up %d",
		r.Queued+r.Settled+r.Reminders, r.Reminders, r.Messages, r.Delivered, r.Failed, r.GaveUp)
	if r.DeadlineHit {
		line += fmt.Sprintf("; out of time: %d left for the next drain", r.Released)
	}
	return line
}
