package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// CronMarker ends every crontab line setup_heartbeat_cron.sh writes; the
// script finds its own lines by it and the schedule check looks for it.
const CronMarker = "# heartbeat-probe: managed by setup_heartbeat_cron.sh"

// checkSchedule looks for the two staggered cron lines (or the systemd
// timer) that make probe-ssh run every 30 seconds.
func (d *doctor) checkSchedule(ctx context.Context) Result {
	r := Result{Check: CheckSchedule}
	install := "run setup_heartbeat_cron.sh (or enable scripts/systemd/heartbeat-probe.timer)"

	timerActive, timerErr := false, ErrNotInstalled
	if d.cfg.TimerActive != nil {
		timerActive, timerErr = d.cfg.TimerActive(ctx)
	}
	var (
		lines   []string
		cronErr = ErrNotInstalled
		tab     string
	)
	if d.cfg.Crontab != nil {
		tab, cronErr = d.cfg.Crontab(ctx)
	}
	if cronErr == nil {
		lines = probeLines(tab)
	}

	if len(lines) == 0 {
		timer := "heartbeat-probe.timer is not active"
		if errors.Is(timerErr, ErrNotInstalled) {
			timer = "there is no systemd"
		}
		switch {
		case timerActive:
			r.Status, r.Message = OK, "systemd timer heartbeat-probe.timer is active"
		case errors.Is(cronErr, ErrNotInstalled):
			r.Status, r.Message = Fail, "no crontab command and "+timer+": nothing runs probe-ssh"
			r.Fix = "install cron (Debian package cron), then " + install
		case cronErr != nil:
			r.Status, r.Message = Fail, "cannot read the crontab: "+cronErr.Error()
			r.Fix = install
		default:
			r.Status, r.Message = Fail, "no probe-ssh line in this user's crontab and "+timer+": nothing runs the probe"
			r.Fix = install
		}
		return r
	}

	managed, sleeping, discarded := 0, 0, 0
	for _, l := range lines {
		if strings.Contains(l, CronMarker) {
			managed++
		}
		if strings.Contains(l, "sleep 30") {
			sleeping++
		}
		if strings.Contains(l, "/dev/null") {
			discarded++
		}
	}
	r.Status = OK
	r.Message = fmt.Sprintf("%d probe-ssh cron lines", len(lines))
	if managed == len(lines) {
		r.Message += " installed by setup_heartbeat_cron.sh"
	}
	var problems, fixes []string
	switch {
	case len(lines) == 1:
		problems = append(problems, "only one probe-ssh cron line: probes run once a minute, so heartbeats reach the 60 s limit and servers flap OFFLINE")
		fixes = append(fixes, "re-run setup_heartbeat_cron.sh to install both staggered lines")
	case sleeping == 0:
		problems = append(problems, "no line has `sleep 30`: the runs are not staggered, so the probe still runs once a minute")
		fixes = append(fixes, "re-run setup_heartbeat_cron.sh to install both staggered lines")
	case len(lines) > 2:
		problems = append(problems, fmt.Sprintf("%d probe-ssh lines: duplicates (the probe lock makes them harmless, but one pair is enough)", len(lines)))
		fixes = append(fixes, "remove hand-made lines with `crontab -e`, then re-run setup_heartbeat_cron.sh")
	}
	if discarded > 0 {
		problems = append(problems, "output goes to /dev/null, so a failing probe is invisible")
		fixes = append(fixes, "re-run setup_heartbeat_cron.sh: it appends output to a log file")
	}
	if timerActive {
		problems = append(problems, "heartbeat-probe.timer is active too: the probe runs from both")
		fixes = append(fixes, "keep one: setup_heartbeat_cron.sh --remove, or systemctl disable --now heartbeat-probe.timer")
	}
	if d.cfg.CronRunning != nil {
		if running, err := d.cfg.CronRunning(ctx); err == nil && !running {
			r.Status = Fail
			r.Message += ", but no cron daemon is running"
			r.Fix = "start cron: systemctl enable --now cron (Debian package cron)"
			return r
		}
	}
	if len(problems) > 0 {
		r.Status = Warn
		r.Message += ": " + strings.Join(problems, "; ")
		r.Fix = strings.Join(fixes, "; ")
	}
	return r
}

// probeLines returns the active (uncommented) crontab lines that run
// probe-ssh.
func probeLines(tab string) []string {
	var out []string
	for _, l := range strings.Split(tab, "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") || !strings.Contains(t, "probe-ssh") {
			continue
		}
		out = append(out, t)
	}
	return out
}
