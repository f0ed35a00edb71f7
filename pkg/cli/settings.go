package cli

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/store"
)

// newConfigCommand is `heartbeat config`: store-wide settings that every
// probe host and serve-api read from the store, so they cannot disagree
// (today: the quorum). Local settings stay flags and environment.
func newConfigCommand(app *App, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Read and change store-wide settings (quorum)",
		Args:  exactArgs(),
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the store-wide settings with their values",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConfigList(cmd.Context(), app, g, asJSON)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	get := &cobra.Command{
		Use:   "get KEY",
		Short: "Print one setting's value",
		Args:  exactArgs("KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigGet(cmd.Context(), app, g, args[0])
		},
	}
	set := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Change a setting",
		Long: `Changes a store-wide setting.

  quorum K   how many probe locations must say a server failed before it
             turns OFFLINE (default 1). K must be at least 1 and at most
             the number of locations that have run in the last hour.`,
		Example: `  heartbeat config set quorum 2`,
		Args:    exactArgs("KEY", "VALUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfigSet(cmd.Context(), app, g, args[0], args[1])
		},
	}
	cmd.AddCommand(list, get, set)
	return cmd
}

func knownSetting(key string) (string, error) {
	for _, s := range store.Settings {
		if s.Key == key {
			return s.Default, nil
		}
	}
	keys := make([]string, len(store.Settings))
	for i, s := range store.Settings {
		keys[i] = s.Key
	}
	return "", usageErrorf("unknown setting %q (known: %v)", key, keys)
}

type settingJSON struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Default string `json:"default"`
	Help    string `json:"help"`
}

func runConfigList(ctx context.Context, app *App, g *globalOptions, asJSON bool) error {
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	out := make([]settingJSON, 0, len(store.Settings))
	for _, d := range store.Settings {
		v, ok, err := s.Setting(ctx, d.Key)
		if err != nil {
			return err
		}
		if !ok {
			v = d.Default
		}
		out = append(out, settingJSON{d.Key, v, d.Default, d.Help})
	}
	if asJSON {
		return output.JSON(app.Out, out)
	}
	for _, o := range out {
		if _, err := fmt.Fprintf(app.Out, "%s\t%s\t(default %s: %s)\n", o.Key, o.Value, o.Default, o.Help); err != nil {
			return err
		}
	}
	return nil
}

func runConfigGet(ctx context.Context, app *App, g *globalOptions, key string) error {
	def, err := knownSetting(key)
	if err != nil {
		return err
	}
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	v, ok, err := s.Setting(ctx, key)
	if err != nil {
		return err
	}
	if !ok {
		v = def
	}
	_, err = fmt.Fprintln(app.Out, v)
	return err
}

func runConfigSet(ctx context.Context, app *App, g *globalOptions, key, value string) error {
	if _, err := knownSetting(key); err != nil {
		return err
	}
	// quorum is the only setting today; a second one gets its own case.
	q, err := store.ParseQuorum(value)
	if err != nil {
		return usageErrorf("quorum: %q is not a whole number of locations from 1", value)
	}
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	if q > 1 {
		leaser, shared := s.(store.ProbeLeaser)
		if !shared {
			return usageErrorf("quorum %d: this store has one probe host and so one location; a quorum above 1 needs several locations, which need a store the probe hosts share (Postgres)", q)
		}
		seen, err := locationsSeen(ctx, leaser)
		if err != nil {
			return err
		}
		if q > len(seen) {
			return usageErrorf("quorum %d: only %d location(s) ran in the last hour (%s); a quorum above that could never be reached. "+
				"Start probe-ssh --location on more hosts first", q, len(seen), strings.Join(seen, ", "))
		}
	}
	if err := s.SetSetting(ctx, key, strconv.Itoa(q)); err != nil {
		return err
	}
	_, err = fmt.Fprintf(app.Out, "quorum set to %d\n", q)
	return err
}

// locationsSeen lists the locations whose hosts finished a run within
// report.HostWindow.
func locationsSeen(ctx context.Context, leaser store.ProbeLeaser) ([]string, error) {
	runs, _, err := leaser.HostRuns(ctx, report.HostWindow)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range runs {
		if !slices.Contains(out, r.Location) {
			out = append(out, r.Location)
		}
	}
	sort.Strings(out)
	return out, nil
}
