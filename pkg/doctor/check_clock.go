package doctor

import (
	"context"
	"fmt"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

// checkClock compares the store's clock with this host's, taking the
// midpoint of the round trip as the moment the store read its clock.
func (d *doctor) checkClock(ctx context.Context, s store.Store) Result {
	r := Result{Check: CheckClock}
	before := d.cfg.Clock()
	storeNow, err := call(ctx, d.cfg.CallTimeout, s.Now)
	after := d.cfg.Clock()
	if err != nil {
		return readFailed(CheckClock, "read the store's clock", err)
	}
	local := before.Add(after.Sub(before) / 2)
	skew := storeNow.Sub(local)
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	r.Message = fmt.Sprintf("the store's clock is %s %s this host's (round trip %s)", abs.Round(time.Millisecond), dir, after.Sub(before).Round(time.Millisecond))
	if abs > d.cfg.MaxSkew {
		r.Status = Warn
		r.Message += fmt.Sprintf(", more than %s: heartbeat ages use the store's clock, but logs and cron ticks on this host do not agree with it", d.cfg.MaxSkew)
		r.Fix = "synchronise both hosts with NTP (systemd-timesyncd or chrony); timedatectl shows the state"
		return r
	}
	r.Status = OK
	return r
}
