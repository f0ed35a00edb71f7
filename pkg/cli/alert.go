package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/backend"
)

func newAlertCommand(app *App, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alert",
		Short: "Raise, resolve and list alerts (an active alert turns ONLINE into WARNING)",
		Args:  exactArgs(),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newAlertRaiseCommand(app, g), newAlertResolveCommand(app, g), newAlertListCommand(app, g))
	return cmd
}

type alertRaiseOptions struct {
	Kind     string
	Severity string
}

func newAlertRaiseCommand(app *App, g *globalOptions) *cobra.Command {
	o := &alertRaiseOptions{}
	cmd := &cobra.Command{
		Use:     "raise SERVER MESSAGE [--kind alert|anomaly] [--severity info|warning|critical]",
		Short:   "Raise an alert on a server and print its id",
		Example: `  id=$(heartbeat alert raise web1 "disk 95% full" --severity critical)`,
		Args:    exactArgs("SERVER", "MESSAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAlertRaise(cmd.Context(), app, g, args[0], args[1], o)
		},
	}
	cmd.Flags().StringVar(&o.Kind, "kind", store.KindAlert, "alert or anomaly")
	cmd.Flags().StringVar(&o.Severity, "severity", store.SeverityWarning, "info, warning or critical")
	return cmd
}

func runAlertRaise(ctx context.Context, app *App, g *globalOptions, ref, message string, o *alertRaiseOptions) error {
	spec := store.AlertSpec{Kind: o.Kind, Severity: o.Severity, Message: message, Source: store.AlertSourceCLI}
	if err := spec.Validate(); err != nil {
		return usageErrorf("%v", err)
	}
	return withServer(ctx, app, g, ref, func(s backend.Store, sv store.Server) error {
		spec.ServerID = sv.ID
		a, err := s.RaiseAlert(ctx, spec)
		if err != nil {
			return err
		}
		// The id alone, so scripts can capture it.
		_, err = fmt.Fprintln(app.Out, a.ID)
		return err
	})
}

type alertResolveOptions struct {
	ID int64
}

func newAlertResolveCommand(app *App, g *globalOptions) *cobra.Command {
	o := &alertResolveOptions{}
	return &cobra.Command{
		Use:   "resolve ID",
		Short: "Resolve an alert",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return usageErrorf("alert id %q is not a positive number", args[0])
			}
			o.ID = id
			return runAlertResolve(cmd.Context(), app, g, o)
		},
	}
}

func runAlertResolve(ctx context.Context, app *App, g *globalOptions, o *alertResolveOptions) error {
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	a, err := s.ResolveAlert(ctx, o.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("no alert with id %d", o.ID)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("alert %d was already resolved at %s", o.ID, a.ResolvedAt.Format(time.RFC3339))
	case err != nil:
		return err
	}
	_, err = fmt.Fprintf(app.Out, "resolved alert %d on %s: %s\n", a.ID, a.ServerName, a.Message)
	return err
}

type alertListOptions struct {
	All  bool
	JSON bool
}

// alertJSON is one alert in `alert list --json`.
type alertJSON struct {
	ID       int64  `json:"id"`
	ServerID int64  `json:"server_id"`
	Server   string `json:"server"`
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
	// Source is who raised it (cli, api, alertmanager; "" before sources
	// were recorded) and Key its external key, if any.
	Source     string     `json:"source"`
	Key        string     `json:"key"`
	CreatedAt  time.Time  `json:"created_at"`
	ResolvedAt *time.Time `json:"resolved_at"`
}

func newAlertListCommand(app *App, g *globalOptions) *cobra.Command {
	o := &alertListOptions{}
	cmd := &cobra.Command{
		Use:   "list [--all] [--json]",
		Short: "List active alerts (--all: resolved ones too)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAlertList(cmd.Context(), app, g, o)
		},
	}
	cmd.Flags().BoolVar(&o.All, "all", false, "include resolved alerts")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print a JSON array")
	return cmd
}

func runAlertList(ctx context.Context, app *App, g *globalOptions, o *alertListOptions) error {
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	alerts, err := s.Alerts(ctx, o.All)
	if err != nil {
		return err
	}
	if o.JSON {
		out := make([]alertJSON, 0, len(alerts))
		for _, a := range alerts {
			out = append(out, alertJSON{a.ID, a.ServerID, a.ServerName, a.Kind, a.Severity, a.Message, a.Source, a.ExternalKey, a.CreatedAt, a.ResolvedAt})
		}
		return output.JSON(app.Out, out)
	}
	if len(alerts) == 0 {
		_, err := fmt.Fprintln(app.Out, "no active alerts")
		return err
	}
	rows := make([][]string, 0, len(alerts))
	for _, a := range alerts {
		resolved := ""
		if a.ResolvedAt != nil {
			resolved = a.ResolvedAt.Format(time.RFC3339)
		}
		rows = append(rows, []string{strconv.FormatInt(a.ID, 10), a.ServerName, a.Kind, a.Severity, a.Message, a.CreatedAt.Format(time.RFC3339), resolved})
	}
	return output.TableWith(app.Out, []string{"ID", "SERVER", "KIND", "SEVERITY", "MESSAGE", "CREATED", "RESOLVED"}, rows, tableOptions(app))
}
