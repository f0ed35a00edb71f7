package doctor

import (
	"context"
	"fmt"
	"strings"
)

// Crontab returns the invoking user's crontab, "" when they have none.
func (h HostTools) Crontab(ctx context.Context) (string, error) {
	bin, err := h.lookPath("crontab")
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

// CronRunning asks pgrep for a cron daemon (Debian's cron, or crond).
func (h HostTools) CronRunning(ctx context.Context) (bool, error) {
	bin, err := h.lookPath("pgrep")
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
