package cli

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/backend"
)

// DefaultMaintenance is how long `maintenance start` lasts without --for
// or --until: long enough for a reboot and a package upgrade, short
// enough that a forgotten window does not hide an outage all night.
const DefaultMaintenance = time.Hour

func newMaintenanceCommand(app *App, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "maintenance",
		Short: "Maintenance windows: servers inside one show MAINTENANCE and their changes are not notified",
		Args:  exactArgs(),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newMaintenanceStartCommand(app, g), newMaintenanceEndCommand(app, g), newMaintenanceListCommand(app, g),
		newMaintenanceScheduleCommand(app, g), newMaintenanceUnscheduleCommand(app, g))
	return cmd
}

// operator is who runs the command, recorded with the windows it opens:
// the OS user, else $USER, else "unknown".
func operator(app *App) string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if name := app.Getenv("USER"); name != "" {
		return name
	}
	return "unknown"
}

// resolveServers resolves every ref (ID or NAME) before anything is
// written, so one unknown name writes nothing.
func resolveServers(ctx context.Context, s store.Store, refs []string) ([]int64, error) {
	ids := make([]int64, 0, len(refs))
	for _, ref := range refs {
		sv, err := resolveServer(ctx, s, ref)
		if err != nil {
			return nil, err
		}
		ids = append(ids, sv.ID)
	}
	return ids, nil
}

// serversOrAll checks that a command names servers or says --all.
func serversOrAll(refs []string, all bool) error {
	switch {
	case all && len(refs) > 0:
		return usageErrorf("name servers or give --all, not both")
	case !all && len(refs) == 0:
		return usageErrorf("name at least one server (ID or NAME) or give --all")
	}
	return nil
}

// storeUsage turns the store's refusal of a value into a usage error.
func storeUsage(err error) error {
	if errors.Is(err, store.ErrInvalid) {
		return usageErrorf("%s", strings.Replace(err.Error(), store.ErrInvalid.Error()+": ", "", 1))
	}
	return err
}

type maintenanceStartOptions struct {
	Refs   []string
	All    bool
	For    time.Duration
	Until  string
	Reason string
}

func newMaintenanceStartCommand(app *App, g *globalOptions) *cobra.Command {
	o := &maintenanceStartOptions{}
	cmd := &cobra.Command{
		Use:   "start ID|NAME...|--all [--for 2h | --until TIME] --reason TEXT",
		Short: "Put servers in maintenance now, for --for (default 1h) or until --until",
		Example: `  heartbeat maintenance start web1 web2 --for 30m --reason "kernel upgrade"
  heartbeat maintenance start --all --until 2026-11-24T06:00:00Z --reason "datacentre move"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Refs = args
			return runMaintenanceStart(cmd.Context(), app, g, o, cmd.Flags().Changed("for"))
		},
	}
	cmd.Flags().BoolVar(&o.All, "all", false, "every registered server")
	cmd.Flags().DurationVar(&o.For, "for", DefaultMaintenance, "how long the window lasts (1m to 720h)")
	cmd.Flags().StringVar(&o.Until, "until", "", "when the window ends, RFC 3339 (2026-11-24T06:00:00Z); must be in the future")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why (required; shown in status and in the notification)")
	return cmd
}

func runMaintenanceStart(ctx context.Context, app *App, g *globalOptions, o *maintenanceStartOptions, forGiven bool) error {
	if err := serversOrAll(o.Refs, o.All); err != nil {
		return err
	}
	spec := store.MaintenanceSpec{All: o.All, For: o.For, Reason: strings.TrimSpace(o.Reason), By: operator(app)}
	if spec.Reason == "" {
		return usageErrorf("--reason is required: say why the servers are in maintenance")
	}
	if o.Until != "" {
		if forGiven {
			return usageErrorf("give --for or --until, not both")
		}
		until, err := time.Parse(time.RFC3339, o.Until)
		if err != nil {
			return usageErrorf("--until %q is not an RFC 3339 time (like 2026-11-24T06:00:00Z)", o.Until)
		}
		spec.Until = until
	} else if o.For < store.MinMaintenance || o.For > store.MaxMaintenance {
		return usageErrorf("--for must be between %v and %v, got %v", store.MinMaintenance, store.MaxMaintenance, o.For)
	}
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	if !o.All {
		if spec.ServerIDs, err = resolveServers(ctx, s, o.Refs); err != nil {
			return err
		}
	}
	windows, err := s.StartMaintenance(ctx, spec)
	if err != nil {
		return storeUsage(err)
	}
	for _, w := range windows {
		if _, err := fmt.Fprintf(app.Out, "%s in maintenance until %s: %s\n", output.Escape(w.ServerName), w.EndsAt.Format(time.RFC3339), output.Escape(w.Reason)); err != nil {
			return err
		}
	}
	if len(windows) == 0 {
		_, err = fmt.Fprintln(app.Out, "no servers registered; no window started")
	}
	return err
}

type maintenanceEndOptions struct {
	Refs []string
	All  bool
}

func newMaintenanceEndCommand(app *App, g *globalOptions) *cobra.Command {
	o := &maintenanceEndOptions{}
	cmd := &cobra.Command{
		Use:   "end ID|NAME...|--all",
		Short: "End the active maintenance windows of servers now",
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Refs = args
			return runMaintenanceEnd(cmd.Context(), app, g, o)
		},
	}
	cmd.Flags().BoolVar(&o.All, "all", false, "every server's active windows")
	return cmd
}

func runMaintenanceEnd(ctx context.Context, app *App, g *globalOptions, o *maintenanceEndOptions) error {
	if err := serversOrAll(o.Refs, o.All); err != nil {
		return err
	}
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	var ids []int64
	if !o.All {
		if ids, err = resolveServers(ctx, s, o.Refs); err != nil {
			return err
		}
	}
	n, err := s.EndMaintenance(ctx, ids, o.All)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(app.Out, "ended %d maintenance window(s)\n", n)
	return err
}

type maintenanceListOptions struct {
	JSON bool
}

// maintenanceListJSON is `maintenance list --json`.
type maintenanceListJSON struct {
	// Windows are the active and upcoming windows, by start.
	Windows []maintenanceWindowJSON `json:"windows"`
	// Schedules are the recurring windows, by name.
	Schedules []maintenanceScheduleJSON `json:"schedules"`
}

type maintenanceWindowJSON struct {
	ID       int64      `json:"id"`
	ServerID int64      `json:"server_id"`
	Server   string     `json:"server"`
	StartsAt time.Time  `json:"starts_at"`
	EndsAt   time.Time  `json:"ends_at"`
	EndedAt  *time.Time `json:"ended_at"`
	Active   bool       `json:"active"`
	Reason   string     `json:"reason"`
	By       string     `json:"by"`
	// Schedule names the schedule that made the window, "" if none.
	Schedule string `json:"schedule"`
}

type maintenanceScheduleJSON struct {
	Name            string   `json:"name"`
	Cron            string   `json:"cron"`
	DurationSeconds int64    `json:"duration_seconds"`
	AllServers      bool     `json:"all_servers"`
	Servers         []string `json:"servers"`
	Reason          string   `json:"reason"`
	By              string   `json:"by"`
	// NextStart is the next occurrence after now, RFC 3339 UTC.
	NextStart *time.Time `json:"next_start"`
}

func newMaintenanceListCommand(app *App, g *globalOptions) *cobra.Command {
	o := &maintenanceListOptions{}
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List active and upcoming maintenance windows and the schedules",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMaintenanceList(cmd.Context(), app, g, o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print a JSON object (windows and schedules)")
	return cmd
}

func runMaintenanceList(ctx context.Context, app *App, g *globalOptions, o *maintenanceListOptions) error {
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	// A schedule's occurrence in progress shows even if no evaluation
	// round has written its windows yet (writing them is idempotent).
	if _, err := s.MaterializeSchedules(ctx); err != nil {
		// Listing must work for a read-only store user too.
		g.log.Warn("could not write the windows of schedules in progress", "err", err)
	}
	windows, schedules, now, err := maintenanceState(ctx, s)
	if err != nil {
		return err
	}
	out := maintenanceListJSON{Windows: []maintenanceWindowJSON{}, Schedules: []maintenanceScheduleJSON{}}
	for _, w := range windows {
		out.Windows = append(out.Windows, maintenanceWindowJSON{w.ID, w.ServerID, w.ServerName, w.StartsAt, w.EndsAt, w.EndedAt,
			!w.StartsAt.After(now) && now.Before(w.End()), w.Reason, w.By, w.ScheduleName})
	}
	for _, sc := range schedules {
		j := maintenanceScheduleJSON{Name: sc.Name, Cron: sc.Cron, DurationSeconds: int64(sc.Duration / time.Second),
			AllServers: sc.AllServers, Servers: sc.ServerNames, Reason: sc.Reason, By: sc.By}
		if next, err := store.CronNext(sc.Cron, now); err == nil {
			j.NextStart = &next
		}
		if j.Servers == nil {
			j.Servers = []string{}
		}
		out.Schedules = append(out.Schedules, j)
	}
	if o.JSON {
		return output.JSON(app.Out, out)
	}
	if len(out.Windows) == 0 {
		if _, err := fmt.Fprintln(app.Out, "no active or upcoming maintenance windows"); err != nil {
			return err
		}
	} else {
		rows := make([][]string, 0, len(out.Windows))
		for _, w := range out.Windows {
			state := "upcoming"
			if w.Active {
				state = "active"
			}
			rows = append(rows, []string{strconv.FormatInt(w.ID, 10), w.Server, state, w.StartsAt.Format(time.RFC3339),
				w.EndsAt.Format(time.RFC3339), w.Reason, w.By})
		}
		if err := output.TableWith(app.Out, []string{"ID", "SERVER", "STATE", "STARTS", "ENDS", "REASON", "BY"}, rows, tableOptions(app)); err != nil {
			return err
		}
	}
	if len(out.Schedules) == 0 {
		_, err := fmt.Fprintln(app.Out, "no maintenance schedules")
		return err
	}
	rows := make([][]string, 0, len(out.Schedules))
	for _, sc := range out.Schedules {
		servers := strings.Join(sc.Servers, ",")
		if sc.AllServers {
			servers = "(all)"
		}
		next := ""
		if sc.NextStart != nil {
			next = sc.NextStart.Format(time.RFC3339)
		}
		rows = append(rows, []string{sc.Name, sc.Cron, (time.Duration(sc.DurationSeconds) * time.Second).String(), servers, next, sc.Reason})
	}
	return output.TableWith(app.Out, []string{"SCHEDULE", "CRON (UTC)", "FOR", "SERVERS", "NEXT", "REASON"}, rows, tableOptions(app))
}

func maintenanceState(ctx context.Context, s backend.Store) ([]store.MaintenanceWindow, []store.MaintenanceSchedule, time.Time, error) {
	windows, err := s.MaintenanceWindows(ctx, true)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	schedules, err := s.Schedules(ctx)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	now, err := s.Now(ctx)
	return windows, schedules, now, err
}

type maintenanceScheduleOptions struct {
	Name    string
	Cron    string
	For     time.Duration
	Servers []string
	All     bool
	Reason  string
}

func newMaintenanceScheduleCommand(app *App, g *globalOptions) *cobra.Command {
	o := &maintenanceScheduleOptions{}
	cmd := &cobra.Command{
		Use:     "schedule NAME --cron EXPR [--for 1h] (--servers A,B | --all) --reason TEXT",
		Short:   "Add a recurring maintenance window (cron expression in UTC)",
		Example: `  heartbeat maintenance schedule sunday-patching --cron "0 3 * * SUN" --for 1h --servers web1,web2 --reason "weekly patching"`,
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			return runMaintenanceSchedule(cmd.Context(), app, g, o)
		},
	}
	cmd.Flags().StringVar(&o.Cron, "cron", "", `when each window starts: five cron fields in UTC ("0 3 * * SUN") or @daily, @weekly, …`)
	cmd.Flags().DurationVar(&o.For, "for", DefaultMaintenance, "how long each window lasts (1m to 720h)")
	cmd.Flags().StringSliceVar(&o.Servers, "servers", nil, "servers (ID or NAME), comma-separated")
	cmd.Flags().BoolVar(&o.All, "all", false, "every server registered when each window starts")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why (required)")
	return cmd
}

func runMaintenanceSchedule(ctx context.Context, app *App, g *globalOptions, o *maintenanceScheduleOptions) error {
	if err := serversOrAll(o.Servers, o.All); err != nil {
		return usageErrorf("give --servers A,B or --all, not both or neither")
	}
	if o.Cron == "" {
		return usageErrorf("--cron is required (five fields in UTC, like \"0 3 * * SUN\")")
	}
	spec := store.ScheduleSpec{Name: strings.TrimSpace(o.Name), Cron: o.Cron, Duration: o.For, All: o.All,
		Reason: strings.TrimSpace(o.Reason), By: operator(app)}
	if spec.Reason == "" {
		return usageErrorf("--reason is required: say why the servers are in maintenance")
	}
	if err := store.ValidateCron(spec.Cron); err != nil {
		return storeUsage(err)
	}
	if spec.Name == "" {
		return usageErrorf("a schedule needs a name")
	}
	if o.For < store.MinMaintenance || o.For > store.MaxMaintenance {
		return usageErrorf("--for must be between %v and %v, got %v", store.MinMaintenance, store.MaxMaintenance, o.For)
	}
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	if !o.All {
		if spec.ServerIDs, err = resolveServers(ctx, s, o.Servers); err != nil {
			return err
		}
	}
	sc, err := s.AddSchedule(ctx, spec)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("a maintenance schedule named %q already exists (unschedule it first)", spec.Name)
	}
	if err != nil {
		return storeUsage(err)
	}
	next := "unknown"
	if now, err := s.Now(ctx); err == nil {
		if t, err := store.CronNext(sc.Cron, now); err == nil {
			next = t.Format(time.RFC3339)
		}
	}
	_, err = fmt.Fprintf(app.Out, "scheduled %s: %s (UTC) for %v, next %s\n", output.Escape(sc.Name), sc.Cron, sc.Duration, next)
	return err
}

type maintenanceUnscheduleOptions struct {
	Name string
	Yes  bool
}

func newMaintenanceUnscheduleCommand(app *App, g *globalOptions) *cobra.Command {
	o := &maintenanceUnscheduleOptions{}
	cmd := &cobra.Command{
		Use:   "unschedule NAME --yes",
		Short: "Remove a maintenance schedule (its past and running windows stay)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			return runMaintenanceUnschedule(cmd.Context(), app, g, o)
		},
	}
	cmd.Flags().BoolVar(&o.Yes, "yes", false, "confirm the removal")
	return cmd
}

func runMaintenanceUnschedule(ctx context.Context, app *App, g *globalOptions, o *maintenanceUnscheduleOptions) error {
	if !o.Yes {
		return usageErrorf("removing maintenance schedule %s stops its future windows; run again with --yes", output.Escape(o.Name))
	}
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.RemoveSchedule(ctx, o.Name); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no maintenance schedule named %q", o.Name)
	} else if err != nil {
		return err
	}
	_, err = fmt.Fprintf(app.Out, "removed maintenance schedule %s\n", output.Escape(o.Name))
	return err
}
