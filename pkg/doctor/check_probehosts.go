package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/store"
)

// checkProbeHosts lists the probe hosts sharing a Postgres store, each
// with its last run's share and failures, and warns about a host that
// stopped while the others go on (nothing turns OFFLINE for it, so
// nothing else would say). On SQLite it says that one host probes.
func (d *doctor) checkProbeHosts(ctx context.Context, s store.Store) Result {
	r := Result{Check: CheckProbeHosts, Status: OK}
	leaser, ok := s.(store.ProbeLeaser)
	if !ok {
		r.Message = "SQLite store: one probe host at a time (a second host only takes over when the first stops); " +
			"to share the fleet between probe hosts, use Postgres"
		return r
	}
	runs, now, err := leaser.HostRuns(ctx, report.HostWindow)
	if err != nil {
		return readFailed(CheckProbeHosts, "read the probe hosts' last runs", err)
	}
	h := report.NewHosts(now, runs)
	if len(h.Hosts) == 0 {
		r.Message = "no probe host has finished a run in the last " + report.HostWindow.String()
		return r
	}
	lines := make([]string, len(h.Hosts))
	for i, hs := range h.Hosts {
		lines[i] = strings.TrimPrefix(hs.Line(), "probe host ")
	}
	r.Message = fmt.Sprintf("%d probe host(s) share the fleet: %s", len(h.Hosts), strings.Join(lines, "; "))
	quorum, err := report.ReadQuorum(ctx, s)
	if err != nil {
		return readFailed(CheckProbeHosts, "read the quorum setting", err)
	}
	v := report.NewVantage(h, quorum)
	if l := v.Line(); l != "" {
		r.Message += "; " + l
	}
	if len(v.Muted) > 0 && r.Status == OK {
		// A cut-off location is a site's network problem that no server
		// shows (its votes are simply not counted), so it needs saying.
		r.Status = Warn
		r.Fix = "a location whose hosts cannot reach nearly any server does not vote: check that site's network (routes, firewall, DNS)"
	}
	if h.Has(report.HostStopped) {
		r.Status = Warn
		r.Fix = "on the stopped host: check its cron lines (crontab -l), its probe log and `heartbeat doctor` there; " +
			"if it was retired on purpose, this warning ends an hour after its last run"
	}
	return r
}
