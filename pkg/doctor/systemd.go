package doctor

import (
	"context"
	"strings"
)

// TimerActive asks systemd whether heartbeat-probe.timer is active. A host
// whose systemctl cannot reach systemd (a container) counts as inactive.
func (h HostTools) TimerActive(ctx context.Context) (bool, error) {
	bin, err := h.lookPath("systemctl")
	if err != nil {
		return false, err
	}
	out, _, _, err := runTool(ctx, bin, "is-active", "heartbeat-probe.timer")
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(out) == "active", nil
}
