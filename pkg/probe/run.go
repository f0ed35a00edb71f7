package probe

import (
	"github.com/stacksense/heartbeat/pkg/failure"

	"context"
	"errors"
	"time"
)

// Summary describes a finished run.
type Summary struct {
	Probed    int
	Succeeded int
	// Interrupted counts targets whose probe the caller's cancellation
	// cut short or left unstarted (Result.Interrupted); they are not in
	// Probed.
	Interrupted   int
	FailedByClass map[failure.Class]int
	// DeadlineHit is true when the run deadline cut probes short or left
	// targets unstarted.
	DeadlineHit bool
	Started     time.Time
	Finished    time.Time
}

// Run probes every target with the options' worker pool, per-probe timeout
// and run deadline, and returns once every target has a Result. Probes
// still open at the deadline are cancelled and targets not yet started are
// reported, both as failure.Timeout, so the sink always receives exactly one
// Result per target. When ctx itself is cancelled, the failures it causes
// and the targets left unstarted are marked Interrupted instead and
// counted apart from Probed.
//
// Results reach sink in batches (Options.BatchSize or BatchInterval,
// whichever comes first), always from the goroutine that called Run, so
// sink need not be safe for concurrent use. The sink owns each slice it is
// given. A slow sink slows the run down rather than buffering without bound.
func Run(ctx context.Context, targets []Target, opts Options, sink func([]Result)) Summary {
	return NewProber(opts).Run(ctx, targets, sink)
}

// Run is Run with this Prober's options; see the package-level Run.
func (p *Prober) Run(ctx context.Context, targets []Target, sink func([]Result)) Summary {
	sum := Summary{Started: time.Now(), FailedByClass: make(map[failure.Class]int)}
	runCtx, cancel := context.WithTimeout(ctx, p.opts.Deadline)
	defer cancel()

	if p.opts.Auth != nil {
		// Parse per-target key files before contacting anyone; a bad file
		// turns into failure.Auth results for its targets, not a crash.
		_ = p.opts.Auth.LoadTargetKeys(ctx, targets)
	}

	workers := min(p.opts.Concurrency, len(targets))
	results := make(chan Result, workers+1)
	jobs := make(chan int)
	for range workers {
		go func() {
			for i := range jobs {
				r := p.probe(runCtx, runCtx, &targets[i])
				// A failure that comes back after the caller cancelled
				// is the cancellation's doing, not the server's.
				r.Interrupted = !r.OK && ctx.Err() != nil
				results <- r
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range targets {
			select {
			case jobs <- i:
			case <-runCtx.Done():
				msg := "not started before the run deadline"
				if !errors.Is(runCtx.Err(), context.DeadlineExceeded) {
					msg = "not started: run cancelled"
				}
				interrupted := ctx.Err() != nil
				for j := i; j < len(targets); j++ {
					results <- Result{ServerID: targets[j].ServerID, Class: failure.Timeout, Message: msg, Interrupted: interrupted}
				}
				return
			}
		}
	}()

	ticker := time.NewTicker(p.opts.BatchInterval)
	defer ticker.Stop()
	batch := make([]Result, 0, min(p.opts.BatchSize, len(targets)))
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if sink != nil {
			sink(batch)
		}
		batch = make([]Result, 0, min(p.opts.BatchSize, len(targets)-sum.Probed-sum.Interrupted))
	}
	for received := 0; received < len(targets); {
		select {
		case r := <-results:
			received++
			switch {
			case r.Interrupted:
				sum.Interrupted++
			case r.OK:
				sum.Probed++
				sum.Succeeded++
			default:
				sum.Probed++
				sum.FailedByClass[r.Class]++
			}
			batch = append(batch, r)
			if len(batch) >= p.opts.BatchSize {
				flush()
			}
		case <-ticker.C:
			flush()
		}
	}
	flush()
	sum.DeadlineHit = errors.Is(expired(runCtx), context.DeadlineExceeded)
	sum.Finished = time.Now()
	return sum
}
