package cli

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newMigrateCommand(app *App, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending schema migrations (safe to run from several hosts at once)",
		Long: `Brings the store's schema up to this binary's version. On Postgres the
migrations run under an advisory lock, so two hosts upgrading at once take
turns. The SQLite default migrates itself on first use; migrate is harmless
there.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMigrate(cmd.Context(), app, g)
		},
	}
}

func runMigrate(ctx context.Context, app *App, g *globalOptions) error {
	s, err := openStoreAllowBehind(ctx, app, g)
	if s == nil {
		return err
	}
	defer s.Close()
	n, err := s.Migrate(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		_, err = fmt.Fprintln(app.Out, "schema is up to date")
	} else {
		_, err = fmt.Fprintf(app.Out, "applied %d migration(s)\n", n)
	}
	return err
}

func newVersionCommand(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and build details",
		Args:  exactArgs(),
		RunE: func(*cobra.Command, []string) error {
			return runVersion(app)
		},
	}
}

func runVersion(app *App) error {
	goVersion, revision := "unknown", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				revision = " " + s.Value[:12]
			}
		}
	}
	_, err := fmt.Fprintf(app.Out, "heartbeat %s%s (%s)\n", app.Version, revision, goVersion)
	return err
}
