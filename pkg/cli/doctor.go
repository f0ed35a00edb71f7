package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/config"
	"github.com/stacksense/heartbeat/pkg/doctor"
	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/probe"
	"github.com/stacksense/heartbeat/pkg/store"
)

// toolTimeout bounds each helper program the doctor runs (crontab,
// systemctl, pgrep).
const toolTimeout = 5 * time.Second

type doctorOptions struct {
	Quick bool
	JSON  bool
	Key   string
}

func newDoctorCommand(app *App, g *globalOptions) *cobra.Command {
	o := &doctorOptions{}
	cmd := &cobra.Command{
		Use:   "doctor [--quick] [--json]",
		Short: "Check the installation: store, SSH key, cron, last probe run, failing servers, host keys, clock",
		Long: `Walks the troubleshooting steps and prints each check as ok, warn, fail (or
skip, when a check it depends on failed), with the fix:

  binary          this binary runs
  store           the store answers and its schema is current
  ssh-key         probe-ssh's key is present, parses and is not readable by others
                  (or ssh-agent holds one); every per-server key file too
  schedule        both staggered probe-ssh cron lines are installed (and cron
                  runs), or the systemd timer heartbeat-probe.timer is active
  last-run        a probe run finished within 90 s and did not hit its deadline
  probe-failures  servers whose last probe failed, by class, with examples
  host-keys       servers that presented a changed host key
  clock           this host's clock agrees with the store's within 2 s

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
	path := app.Getenv("PATH")
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
		Crontab:     func(ctx context.Context) (string, error) { return readCrontab(ctx, path) },
		CronRunning: func(ctx context.Context) (bool, error) { return cronRunning(ctx, path) },
		TimerActive: func(ctx context.Context) (bool, error) { return timerActive(ctx, path) },
		LogHint:     "setup_heartbeat_cron.sh --log; default ~/.local/state/heartbeat/probe.log",
	}
	if sc, err := config.ResolveStore(g.DB, app.Getenv, app.Home); err == nil {
		cfg.StoreName, cfg.StoreOrigin = sc.Display(), sc.Origin
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

// lookPath finds an executable on the given PATH (the App's, not the
// process's, so a test can put stand-ins first).
func lookPath(name, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, doctor.ErrNotInstalled)
}

// runTool runs a helper program with a deadline and returns its stdout,
// stderr and exit code; err is set only if it could not run at all.
func runTool(ctx context.Context, path string, args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(ctx, toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		return out.String(), errb.String(), ee.ExitCode(), nil
	}
	if err != nil {
		return "", "", -1, fmt.Errorf("run %s %s: %w", path, strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), 0, nil
}

// readCrontab returns the invoking user's crontab, "" when they have none.
func readCrontab(ctx context.Context, path string) (string, error) {
	bin, err := lookPath("crontab", path)
	if err != nil {
		return "", err
	}
	out, errOut, code, err := runTool(ctx, bin, "-l")
	switch {
	case err != nil:
		return "", err
	case code == 0:
		return out, nil
	case strings.Contains(errOut, "no crontab for"):
		return "", nil
	}
	return "", fmt.Errorf("crontab -l: exit %d: %s", code, strings.TrimSpace(errOut))
}

// cronRunning asks pgrep for a cron daemon (Debian's cron, or crond).
func cronRunning(ctx context.Context, path string) (bool, error) {
	bin, err := lookPath("pgrep", path)
	if err != nil {
		return false, err
	}
	for _, name := range []string{"cron", "crond"} {
		_, _, code, err := runTool(ctx, bin, "-x", name)
		if err != nil {
			return false, err
		}
		if code == 0 {
			return true, nil
		}
	}
	return false, nil
}

// timerActive asks systemd whether heartbeat-probe.timer is active. A host
// whose systemctl cannot reach systemd (a container) counts as inactive.
func timerActive(ctx context.Context, path string) (bool, error) {
	bin, err := lookPath("systemctl", path)
	if err != nil {
		return false, err
	}
	out, _, _, err := runTool(ctx, bin, "is-active", "heartbeat-probe.timer")
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(out) == "active", nil
}
