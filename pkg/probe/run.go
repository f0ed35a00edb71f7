package probe

import (
	"github.com/stacksense/heartbeat/pkg/failure"

	"context"
	"errors"
	"sync"
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
	if p.opts.Auth != nil {
		// Parse per-target key files before contacting anyone; a bad file
		// turns into failure.Auth results for its targets, not a crash.
		_ = p.opts.Auth.LoadTargetKeys(ctx, targets)
	}
	given := false
	return p.run(ctx, func(context.Context) []Target {
		if given {
			return nil
		}
		given = true
		return targets
	}, min(p.opts.Concurrency, len(targets)), len(targets), sink)
}

// RunFrom is Run over targets that arrive while the run goes on: next is
// called, from one goroutine, for the next batch whenever the previous
// one has been handed to the workers, until it returns an empty batch or
// the run deadline passes (targets it returned are then reported as Run
// reports targets left unstarted). It receives the run's context, which
// the deadline cancels. Per-target key files are parsed batch by batch.
// Several probe hosts sharing one fleet feed their claims through it.
func RunFrom(ctx context.Context, next func(context.Context) []Target, opts Options, sink func([]Result)) Summary {
	return NewProber(opts).RunFrom(ctx, next, sink)
}

// RunFrom is RunFrom with this Prober's options.
func (p *Prober) RunFrom(ctx context.Context, next func(context.Context) []Target, sink func([]Result)) Summary {
	return p.run(ctx, func(ctx context.Context) []Target {
		batch := next(ctx)
		if p.opts.Auth != nil && len(batch) > 0 {
			_ = p.opts.Auth.LoadTargetKeys(ctx, batch)
		}
		return batch
	}, p.opts.Concurrency, p.opts.BatchSize, sink)
}

// run is the worker pool behind Run and RunFrom: a feeder hands each
// batch's targets to the workers, and the results are collected and
// batched for sink on the calling goroutine. sizeHint bounds the first
// result batch's allocation.
func (p *Prober) run(ctx context.Context, next func(context.Context) []Target, workers, sizeHint int, sink func([]Result)) Summary {
	sum := Summary{Started: time.Now(), FailedByClass: make(map[failure.Class]int)}
	runCtx, cancel := context.WithTimeout(ctx, p.opts.Deadline)
	defer cancel()

	results := make(chan Result, workers+1)
	jobs := make(chan *Target)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range jobs {
				r := p.probe(runCtx, runCtx, t)
				// A failure that comes back after the caller cancelled
				// is the cancellation's doing, not the server's.
				r.Interrupted = !r.OK && ctx.Err() != nil
				results <- r
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		unstarted := func(targets []Target) {
			msg := "not started before the run deadline"
			if !errors.Is(runCtx.Err(), context.DeadlineExceeded) {
				msg = "not started: run cancelled"
			}
			interrupted := ctx.Err() != nil
			for j := range targets {
				results <- Result{ServerID: targets[j].ServerID, Class: failure.Timeout, Message: msg, Interrupted: interrupted}
			}
		}
		for {
			// A send can win its select against the deadline (both ready
			// at once): never ask for more once the run is over.
			if runCtx.Err() != nil {
				return
			}
			targets := next(runCtx)
			if len(targets) == 0 {
				return
			}
			for i := range targets {
				if runCtx.Err() != nil {
					unstarted(targets[i:])
					return
				}
				select {
				case jobs <- &targets[i]:
				case <-runCtx.Done():
					unstarted(targets[i:])
					return
				}
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()

	ticker := time.NewTicker(p.opts.BatchInterval)
	defer ticker.Stop()
	batch := make([]Result, 0, min(p.opts.BatchSize, sizeHint))
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if sink != nil {
			sink(batch)
		}
		batch = make([]Result, 0, max(min(p.opts.BatchSize, sizeHint-sum.Probed-sum.Interrupted), 0))
	}
	for done := false; !done; {
		select {
		case r, ok := <-results:
			if !ok {
				done = true
				break
			}
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
