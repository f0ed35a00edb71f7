package doctor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/store"
)

// DefaultMaxBacklogAge is how long a notification may wait undelivered
// before the doctor warns: drains run after every probe run and every
// 10 s in serve-api, so ten minutes means nothing is draining, or every
// attempt fails.
const DefaultMaxBacklogAge = 10 * time.Minute

// checkNotify reports channels whose latest delivery attempt failed and
// a backlog older than DefaultMaxBacklogAge. An installation without
// channels is fine: notifications are optional.
func (d *doctor) checkNotify(ctx context.Context, s store.Store) Result {
	r := Result{Check: CheckNotify}
	channels, err := call(ctx, d.cfg.CallTimeout, s.Channels)
	if err != nil {
		return readFailed(CheckNotify, "read notification channels", err)
	}
	if len(channels) == 0 {
		r.Status, r.Message = OK, "no notification channels (heartbeat notify add NAME URL adds one)"
		return r
	}
	st, err := call(ctx, d.cfg.CallTimeout, s.DeliveryStats)
	if err != nil {
		return readFailed(CheckNotify, "read delivery stats", err)
	}
	var problems, fixes []string
	if len(st.Failing) > 0 {
		parts := make([]string, 0, len(st.Failing))
		for _, f := range st.Failing {
			p := fmt.Sprintf("%s (last attempt %s ago: %s", output.Escape(f.ChannelName),
				st.Now.Sub(f.LastAttempt).Round(time.Second), output.Escape(f.LastError))
			if f.Pending > 0 {
				p += fmt.Sprintf("; %d being retried", f.Pending)
			}
			if f.GaveUp > 0 {
				p += fmt.Sprintf("; %d given up in the last 24h", f.GaveUp)
			}
			parts = append(parts, p+")")
		}
		problems = append(problems, fmt.Sprintf("%d of %d channels fail: %s", len(st.Failing), len(channels), strings.Join(parts, ", ")))
		fixes = append(fixes, "check each failing channel with heartbeat notify test NAME; fix its URL by removing and adding it again")
	}
	if st.OldestPending != nil && st.Now.Sub(*st.OldestPending) > DefaultMaxBacklogAge {
		problems = append(problems, fmt.Sprintf("%d notifications wait, the oldest queued %s ago",
			st.Backlog, st.Now.Sub(*st.OldestPending).Round(time.Second)))
		fixes = append(fixes, "make sure something drains the queue (probe-ssh runs, serve-api, or a cron line running heartbeat notify drain)")
	}
	if len(problems) == 0 {
		r.Status = OK
		r.Message = fmt.Sprintf("%d channels, none failing; %d notifications waiting", len(channels), st.Backlog)
		return r
	}
	r.Status, r.Message, r.Fix = Warn, strings.Join(problems, "; "), strings.Join(fixes, "; ")
	return r
}
