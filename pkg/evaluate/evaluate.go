// Package evaluate is one evaluation round: judge every server against the
// store's clock, record what changed (Store.Evaluate), and tell people
// about it (deliver.Drain, in what is left of the round's deadline). probe-ssh runs a round at the end of every run, serve-api
// every 10 seconds (push-only installations have no probe run), and
// `heartbeat evaluate` from a cron line on hosts that run neither; all
// three call Round, so a change is judged the same way whoever notices it.
package evaluate

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/stacksense/heartbeat/pkg/deliver"
	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

// DefaultStoreTimeout bounds each store call of a round.
const DefaultStoreTimeout = 5 * time.Second

// Options describe one round.
type Options struct {
	// Run is the probe run that just finished, when a probe-ssh run calls
	// the round; nil means the last finished run in the store. It decides
	// whether the monitoring host was cut off.
	Run *store.Run
	// StoreTimeout bounds each store call; 0 means DefaultStoreTimeout.
	StoreTimeout time.Duration
	// NoDrain skips the notification drain (the state changes are still
	// recorded, and the next drain sends them).
	NoDrain bool
	// Drain tunes the drain (storm threshold, parallel sends); its Log is
	// the round's.
	Drain deliver.Options
	Log   *slog.Logger
}

// Result is what a round did.
type Result struct {
	store.EvalResult
	// HostCutOff is set when the round judged the monitoring host cut off
	// and so kept ssh servers from going OFFLINE.
	HostCutOff bool
	// Delivery is what the notification drain did.
	Delivery deliver.Result
}

// Round evaluates the fleet once. ctx bounds the whole round; each store
// call is bounded by StoreTimeout as well.
func Round(ctx context.Context, st store.Store, opts Options) (Result, error) {
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = DefaultStoreTimeout
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	call := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, opts.StoreTimeout) }

	params, err := cutOff(ctx, st, opts, call)
	if err != nil {
		return Result{}, err
	}
	cctx, cancel := call()
	v, err := report.LoadVantage(cctx, st)
	cancel()
	if err != nil {
		return Result{}, fmt.Errorf("evaluation round: %w", err)
	}
	params.Need, params.MinVoteWindow = v.Need, status.ProbeOverdue
	for loc := range v.Muted {
		params.Muted = append(params.Muted, loc)
	}
	cctx, cancel = call()
	res, err := st.Evaluate(cctx, params)
	cancel()
	if err != nil {
		return Result{}, fmt.Errorf("evaluation round: %w", err)
	}
	out := Result{EvalResult: res, HostCutOff: params.HostCutOff}
	for _, f := range res.Flips {
		name := f.ServerName
		if f.ServerID == 0 {
			name = "(fleet)"
		}
		// Debug: probe-ssh is quiet on success (cron mails what it prints);
		// serve-api logs the changes at info itself.
		opts.Log.Debug("state change", "server", name, "from", f.From, "to", f.To, "at", f.At.Format(time.RFC3339), "reason", f.Reason)
	}
	if opts.NoDrain {
		return out, nil
	}
	// The drain gets what is left of ctx: a slow channel leaves its
	// messages for the next round rather than stretch this one.
	dopts := opts.Drain
	dopts.Log = opts.Log
	if out.Delivery, err = deliver.Drain(ctx, st, dopts); err != nil {
		return out, fmt.Errorf("evaluation round: notifications: %w", err)
	}
	return out, nil
}

// cutOff decides whether this round must not take ssh servers OFFLINE:
// the run that would cause it (the one just finished, else the last
// finished one, if it finished within status.ProbeOverdue) could not reach
// nearly any server, so its silence says more about the monitoring host
// than about them. A probe that has stopped altogether does not shield
// the fleet for ever: past ProbeOverdue its servers go stale as usual and
// the status header says why.
func cutOff(ctx context.Context, st store.Store, opts Options, call func() (context.Context, context.CancelFunc)) (store.EvalParams, error) {
	run := opts.Run
	cctx, cancel := call()
	defer cancel()
	now, err := st.Now(cctx)
	if err != nil {
		return store.EvalParams{}, fmt.Errorf("evaluation round: %w", err)
	}
	if run == nil {
		if run, err = st.LastFinishedRun(cctx); err != nil {
			return store.EvalParams{}, fmt.Errorf("evaluation round: %w", err)
		}
	}
	if run == nil || run.FinishedAt == nil || status.Age(now, *run.FinishedAt) > status.ProbeOverdue {
		return store.EvalParams{}, nil
	}
	h := report.NewRunHeader(now, run, nil)
	if !h.Has(report.HostCutOff) {
		return store.EvalParams{}, nil
	}
	return store.EvalParams{HostCutOff: true, CutOffHost: run.Host, CutOffReason: fmt.Sprintf("monitoring host cut off (probe run %d on %s): %s", run.ID, run.Host, h.Text(report.HostCutOff))}, nil
}

// DefaultInterval is how often serve-api runs a round: a third of the
// default 60-second stale-after, so a push server that stops is recorded
// OFFLINE within about 10 seconds of going stale.
const DefaultInterval = 10 * time.Second

// Every runs a round every interval until ctx ends, each bounded by
// interval (a round that cannot finish in time is abandoned and the next
// one catches up), and hands each outcome to done. It returns when ctx
// ends.
func Every(ctx context.Context, st store.Store, interval time.Duration, opts Options, done func(Result, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, interval)
		res, err := Round(rctx, st, opts)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if done != nil {
			done(res, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
