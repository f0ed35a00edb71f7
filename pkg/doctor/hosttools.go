package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ToolTimeout bounds each helper program the doctor runs (crontab,
// systemctl, pgrep).
const ToolTimeout = 5 * time.Second

// HostTools answers Config's Crontab, CronRunning and TimerActive by
// running this host's own programs, found on Path (the caller's PATH, not
// necessarily the process's, so a test can put stand-ins first).
type HostTools struct {
	Path string
}

// lookPath finds an executable on h.Path; a missing one is an error
// wrapping ErrNotInstalled.
func (h HostTools) lookPath(name string) (string, error) {
	for _, dir := range filepath.SplitList(h.Path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, ErrNotInstalled)
}

// runTool runs a helper program with a deadline and returns its stdout,
// stderr and exit code; err is set only if it could not run at all.
func runTool(ctx context.Context, path string, args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(ctx, ToolTimeout)
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
