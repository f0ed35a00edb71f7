package doctor

import (
	"context"
	"fmt"

	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

// checkLastRun reads the last finished (and last aborted) probe run the
// way status --verbose does: overdue fails, a run cut short warns.
func (d *doctor) checkLastRun(ctx context.Context, s store.Store) Result {
	r := Result{Check: CheckLastRun}
	last, err := call(ctx, d.cfg.CallTimeout, s.LastFinishedRun)
	if err != nil {
		return readFailed(CheckLastRun, "read the last probe run", err)
	}
	if last, err = call(ctx, d.cfg.CallTimeout, func(ctx context.Context) (*store.Run, error) {
		return report.LoadHeaderRun(ctx, s, last)
	}); err != nil {
		return readFailed(CheckLastRun, "read the probe hosts' last runs", err)
	}
	aborted, err := call(ctx, d.cfg.CallTimeout, s.LastAbortedRun)
	if err != nil {
		return readFailed(CheckLastRun, "read the last aborted probe run", err)
	}
	now, err := call(ctx, d.cfg.CallTimeout, s.Now)
	if err != nil {
		return readFailed(CheckLastRun, "read the store's clock", err)
	}
	logs := "look at the probe log"
	if d.cfg.LogHint != "" {
		logs += " (" + d.cfg.LogHint + ")"
	}
	logs += " and `grep CRON /var/log/syslog` (or journalctl -u cron); run `heartbeat probe-ssh --verbose` by hand"
	// The same reading of the last run as status --verbose and the page.
	header := report.NewRunHeader(now, last, aborted)
	if header.Last == nil {
		r.Status, r.Message = Fail, "no probe-ssh run has finished on this store yet"
		r.Fix = "install the schedule (setup_heartbeat_cron.sh) and wait a minute; if it is installed, " + logs
		return r
	}
	age := header.Age
	took := last.FinishedAt.Sub(last.StartedAt).Seconds()
	r.Message = fmt.Sprintf("last run finished %s ago on %s: %d/%d answered in %.1fs", status.FormatAge(age), hostOr(last.Host), last.Succeeded, last.Probed, took)
	switch {
	case header.Has(report.ProbeOverdue):
		r.Status = Fail
		r.Message += fmt.Sprintf("; nothing for more than %s, so probe-ssh is not running and every server will show OFFLINE", status.FormatAge(status.ProbeOverdue))
		r.Fix = logs
	case last.DeadlineHit:
		r.Status = Warn
		r.Message += fmt.Sprintf("; it hit its deadline with %d of %d servers probed (the rest count as timeout)", last.Probed, last.Servers)
		r.Fix = "find what is slow in `heartbeat probe-ssh --verbose`: raise --concurrency, lower --timeout, or fix the servers that time out"
	case header.Has(report.RunAborted):
		r.Status = Warn
		r.Message += "; " + header.Text(report.RunAborted)
		r.Fix = "a probe-ssh process was killed before it finished (OOM killer, reboot, a cron or systemd time limit): " + logs
	default:
		r.Status = OK
	}
	return r
}

func hostOr(h string) string {
	if h == "" {
		return "an unknown host"
	}
	return h
}
