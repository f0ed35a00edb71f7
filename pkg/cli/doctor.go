package cli

import (
	"context"
	"os"
	"os/user"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/config"
	"github.com/stacksense/heartbeat/pkg/doctor"
	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/probe"
	"github.com/stacksense/heartbeat/pkg/store"
)

type doctorOptions struct {
	Quick bool
	JSON  bool
	Key   string
}

func newDoctorCommand(app *App, g *globalOptions) *cobra.Command {
	o := &doctorOptions{}
	cmd := &cobra.Command{
		Use:   "doctor [--quick] [--json]",
		Short: "Check the installation: store, SSH key, cron, last probe run, failing servers, host keys, token-less pushes, clock",
		Long: `Walks the troubleshooting steps and prints each check as ok, warn, fail (or
skip, when a check it depends on failed), with the fix:

  binary            this binary runs
  store             the store answers and its schema is current
  ssh-key           probe-ssh's key is present, parses and is not readable by
                    others (or ssh-agent holds one); every per-server key file too
  schedule          both staggered probe-ssh cron lines are installed (and cron
                    runs), or the systemd timer heartbeat-probe.timer is active
  last-run          a probe run finished within 90 s and did not hit its deadline
  probe-failures    servers whose last probe failed, by class, with examples
  host-keys         servers that presented a changed host key
  tokenless-pushes  servers that accept pushes without a token (a warning
                    while any does: switch it off once tokens are deployed)
  clock             this host's clock agrees with the store's within 2 s

--quick runs only the first three (setup_heartbeat_cron.sh runs it before
installing). Run it as the user cron runs probe-ssh as, with the same store
settings. Exit 0 when nothing failed (warnings allowed), 1 otherwise.`,
		Example: `  heartbeat doctor
  heartbeat doctor --quick --db postgres://hb@db1/heartbeat
  heartbeat doctor --json | jq '.[] | select(.status != "ok")'`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDoctor(cmd.Context(), app, g, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Quick, "quick", false, "only the local checks: binary, store, ssh-key")
	f.BoolVar(&o.JSON, "json", false, `print a JSON array of {"check","status","message","fix"}`)
	f.StringVar(&o.Key, "key", "", "the key probe-ssh is given with --key, if any (env HEARTBEAT_SSH_KEY, SSH_PRIVATE_KEY_PATH)")
	return cmd
}

func runDoctor(ctx context.Context, app *App, g *globalOptions, o *doctorOptions) error {
	current := ""
	if u, err := user.Current(); err == nil {
		current = u.Username
	}
	creds := config.ResolveProbeCredentials(o.Key, "", "", app.Getenv, app.Home, current)
	exe, _ := os.Executable()
	tools := doctor.HostTools{Path: app.Getenv("PATH")}
	cfg := doctor.Config{
		Quick:      o.Quick,
		Version:    app.Version,
		Executable: exe,
		OpenStore: func(ctx context.Context) (store.Store, error) {
			s, err := openStore(ctx, app, g)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		Auth:        probe.AuthConfig{KeyPath: creds.KeyPath, AgentSocket: creds.AgentSocket, HomeDir: app.Home},
		KeyOrigin:   creds.KeyOrigin,
		Crontab:     tools.Crontab,
		CronRunning: tools.CronRunning,
		TimerActive: tools.TimerActive,
		LogHint:     "setup_heartbeat_cron.sh --log; default ~/.local/state/heartbeat/probe.log",
	}
	if sc, err := config.ResolveStore(g.DB, app.Getenv, app.Home); err == nil {
		cfg.StoreName, cfg.StoreOrigin = storeDisplay(sc), sc.Origin
	}
	results := doctor.Run(ctx, cfg)
	var err error
	if o.JSON {
		err = output.JSON(app.Out, results)
	} else {
		err = doctor.WriteText(app.Out, results)
	}
	if err != nil {
		return err
	}
	if doctor.Failed(results) {
		// The report already says what failed and how to fix it.
		return silentExit(ExitFailure)
	}
	return ctx.Err()
}
