// Package deliver drains the notification queue: it queues new flips and
// due reminders for the channels that want them (Store.EnqueueDeliveries),
// claims due deliveries atomically, groups them per channel, sends them
// with pkg/notify and records every outcome. The store holds all state, so
// several probe hosts and serve-api may drain at once: each (flip,
// channel) is sent once while its claimer lives, and again by another
// drainer if the claimer dies before recording it (at-least-once; every
// message carries an idempotency key).
//
// Drain never outlives its context: it stops sending a little before the
// deadline, releases what it claimed but did not send, records what it
// did and returns, leaving the rest for the next tick.
package deliver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/stacksense/heartbeat/pkg/notify"
	"github.com/stacksense/heartbeat/pkg/store"
)

// DefaultStormThreshold: a channel that has more events than this in one
// drain gets one grouped message for them.
const DefaultStormThreshold = 10

// Defaults for Options.
const (
	DefaultBatchSize = 500
	DefaultParallel  = 8
	// recordReserve is the most a drain keeps back from its deadline to
	// record outcomes and release claims after sending stops.
	recordReserve = time.Second
	// DefaultClaimMargin is added to the drain's own budget for its
	// claims, so a claim outlives the drain that holds it but not by much.
	DefaultClaimMargin = 30 * time.Second
	// defaultBudget is a drain's budget when its context has no deadline.
	defaultBudget = time.Minute
	// MinBudget is the least time left for which a drain starts at all:
	// with less, it could claim but not send, so it leaves everything to
	// the next one.
	MinBudget = 250 * time.Millisecond
)

// Options tune a drain. The zero value is usable.
type Options struct {
	// Source is the host name shown in messages; "" means os.Hostname.
	Source string
	// Claimer names this drainer in claims; "" means host:pid:random.
	Claimer string
	// StormThreshold: more events than this for one channel in one batch
	// become one grouped message; 0 means DefaultStormThreshold, negative
	// never groups.
	StormThreshold int
	// BatchSize deliveries are claimed at a time (default 500).
	BatchSize int
	// Parallel channels are sent to at once (default 8); one channel's
	// messages go one after another, in the order of their flips.
	Parallel int
	// SendTimeout limits one attempt (default notify.DefaultTimeout).
	SendTimeout time.Duration
	// Enqueue tunes the queueing step: the flapping rule (zero: the
	// store's defaults).
	Enqueue store.EnqueueParams
	// ClaimMargin is how long a claim outlives the drain's deadline, and
	// so how long a drainer that dies keeps its claims from the others
	// (default DefaultClaimMargin).
	ClaimMargin time.Duration
	// Log receives one line per failed attempt (never a channel URL's
	// secret); nil discards.
	Log *slog.Logger
}

// Result counts what one drain did.
type Result struct {
	// Queued deliveries of new flips, of flapping servers' settled
	// states, and reminders.
	Queued, Settled, Reminders int
	// Claimed deliveries, and the Messages they were sent in (a storm is
	// one message).
	Claimed, Messages int
	// Outcomes as recorded: Delivered, Failed (to be retried), GaveUp,
	// Released (claimed but not sent because time ran out).
	Delivered, Failed, GaveUp, Released int
	// DeadlineHit: the drain stopped early for its deadline and left due
	// deliveries for the next one.
	DeadlineHit bool
}

func (r *Result) add(o store.OutcomeResult) {
	r.Delivered += o.Delivered
	r.Failed += o.Retrying
	r.GaveUp += o.GaveUp
	r.Released += o.Released
}

// Drain runs one drain against st within ctx's deadline (defaultBudget if
// it has none; with less than MinBudget left it does nothing and reports
// DeadlineHit). An error means the store failed; failed sends are counted
// in the Result and retried later, never returned.
func Drain(ctx context.Context, st store.Store, opts Options) (Result, error) {
	var res Result
	opts = withDefaults(opts)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultBudget)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	if time.Until(deadline) < MinBudget {
		res.DeadlineHit = true
		return res, nil
	}
	// Sending stops a little before the deadline so outcomes can still be
	// recorded in time: at most recordReserve, at least a fifth of what is
	// left.
	reserve := min(recordReserve, time.Until(deadline)/5)
	sendCtx, cancel := context.WithDeadline(ctx, deadline.Add(-reserve))
	defer cancel()

	n, err := st.EnqueueDeliveries(ctx, opts.Enqueue)
	if err != nil {
		return res, fmt.Errorf("drain: %w", err)
	}
	res.Queued, res.Settled, res.Reminders = n.Flips, n.Settled, n.Reminders

	failedChannels := map[int64]string{} // channel id → the error of its failed attempt in this drain
	for {
		if sendCtx.Err() != nil {
			res.DeadlineHit = true
			return res, nil
		}
		ttl := time.Until(deadline) + opts.ClaimMargin
		batch, err := st.ClaimDeliveries(ctx, store.ClaimParams{Claimer: opts.Claimer, Limit: opts.BatchSize, TTL: ttl})
		if err != nil {
			return res, fmt.Errorf("drain: %w", err)
		}
		res.Claimed += len(batch)
		if len(batch) == 0 {
			return res, nil
		}
		outcomes, messages := sendBatch(sendCtx, batch, opts, failedChannels)
		res.Messages += messages
		rec, err := st.RecordDeliveryOutcomes(ctx, store.OutcomeParams{Claimer: opts.Claimer, Outcomes: outcomes})
		if err != nil {
			// The claims expire on their own; another drain sends again
			// what this one may have sent (at-least-once).
			return res, fmt.Errorf("drain: %w", err)
		}
		res.add(rec)
		if rec.Released > 0 || sendCtx.Err() != nil {
			res.DeadlineHit = true
			return res, nil
		}
		if len(batch) < opts.BatchSize {
			return res, nil
		}
	}
}

func withDefaults(o Options) Options {
	if o.Source == "" {
		o.Source, _ = os.Hostname()
	}
	if o.Claimer == "" {
		o.Claimer = NewClaimer(o.Source)
	}
	if o.StormThreshold == 0 {
		o.StormThreshold = DefaultStormThreshold
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = notify.DefaultTimeout
	}
	if o.ClaimMargin <= 0 {
		o.ClaimMargin = DefaultClaimMargin
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// NewClaimer returns a claimer name unique to this call: host, pid and a
// random suffix, so two drains in one process never share claims.
func NewClaimer(host string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// channelBatch is one channel's share of a claimed batch.
type channelBatch struct {
	url, secret, name string
	deliveries        []store.Delivery
}

// sendBatch sends a claimed batch, channels in parallel, and returns one
// outcome per delivery and the number of messages attempted.
func sendBatch(ctx context.Context, batch []store.Delivery, opts Options, failed map[int64]string) ([]store.DeliveryOutcome, int) {
	var order []int64
	byChannel := map[int64]*channelBatch{}
	for _, d := range batch {
		cb := byChannel[d.ChannelID]
		if cb == nil {
			cb = &channelBatch{url: d.ChannelURL, secret: d.ChannelSecret, name: d.ChannelName}
			byChannel[d.ChannelID] = cb
			order = append(order, d.ChannelID)
		}
		cb.deliveries = append(cb.deliveries, d)
	}
	var (
		mu       sync.Mutex
		outcomes = make([]store.DeliveryOutcome, 0, len(batch))
		messages int
		wg       sync.WaitGroup
		slots    = make(chan struct{}, opts.Parallel)
	)
	for _, id := range order {
		cb := byChannel[id]
		mu.Lock()
		prior, hadFailed := failed[id]
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			out, sent, failErr := sendChannel(ctx, cb, opts, prior, hadFailed)
			mu.Lock()
			defer mu.Unlock()
			outcomes = append(outcomes, out...)
			messages += sent
			if failErr != "" {
				failed[id] = failErr
			}
		}()
	}
	wg.Wait()
	return outcomes, messages
}

// sendChannel sends one channel's deliveries in order: one grouped message
// for a storm, else one message each. After a failed attempt the rest of
// the channel's messages in this drain are not tried (a dead receiver
// would cost a time-out each) and fail with the same error, to be retried
// with it. It returns the outcomes, the messages attempted and the error
// of a failed attempt ("" if none).
func sendChannel(ctx context.Context, cb *channelBatch, opts Options, prior string, hadFailed bool) ([]store.DeliveryOutcome, int, string) {
	out := make([]store.DeliveryOutcome, 0, len(cb.deliveries))
	fail := func(ds []store.Delivery, msg string) {
		for _, d := range ds {
			out = append(out, store.DeliveryOutcome{ID: d.ID, Error: msg})
		}
	}
	if hadFailed {
		fail(cb.deliveries, "not attempted: an earlier message to this channel failed in the same drain: "+prior)
		return out, 0, prior
	}
	sender, err := notify.New(cb.url, cb.secret, notify.WithTimeout(opts.SendTimeout))
	if err != nil {
		// The URL was valid when added; a newer binary may refuse it.
		fail(cb.deliveries, err.Error())
		return out, 0, err.Error()
	}
	var groups [][]store.Delivery
	if opts.StormThreshold > 0 && len(cb.deliveries) > opts.StormThreshold {
		groups = [][]store.Delivery{cb.deliveries}
	} else {
		for i := range cb.deliveries {
			groups = append(groups, cb.deliveries[i:i+1])
		}
	}
	sent := 0
	for i, g := range groups {
		if ctx.Err() != nil {
			for _, rest := range groups[i:] {
				for _, d := range rest {
					out = append(out, store.DeliveryOutcome{ID: d.ID, Unsent: true})
				}
			}
			return out, sent, ""
		}
		msg := Message(g, cb.name, opts.Source, len(groups) == 1 && len(g) > 1)
		sent++
		err := sender.Send(ctx, msg)
		switch {
		case err == nil:
			for _, d := range g {
				out = append(out, store.DeliveryOutcome{ID: d.ID, Sent: true})
			}
		case ctx.Err() != nil:
			// Stopped by the drain's own deadline, not refused: release
			// it for the next drain, which sends it again.
			for _, rest := range groups[i:] {
				for _, d := range rest {
					out = append(out, store.DeliveryOutcome{ID: d.ID, Unsent: true})
				}
			}
			return out, sent, ""
		default:
			opts.Log.Warn("notification not delivered", "channel", cb.name, "deliveries", len(g), "err", err)
			for _, rest := range groups[i:] {
				fail(rest, err.Error())
			}
			return out, sent, err.Error()
		}
	}
	return out, sent, ""
}

// Message builds the message for claimed deliveries of one channel.
func Message(ds []store.Delivery, channel, source string, grouped bool) notify.Message {
	m := notify.Message{Grouped: grouped, Channel: channel, Source: source, Events: make([]notify.Event, len(ds))}
	for i, d := range ds {
		m.Events[i] = Event(d)
	}
	return m
}

// Event is a delivery as pkg/notify tells it.
func Event(d store.Delivery) notify.Event {
	e := notify.Event{ID: d.FlipID, Kind: d.Kind, ServerID: d.ServerID, ServerName: d.ServerName, Host: d.Host,
		From: d.From, To: d.To, At: d.At, Reason: d.Reason, DownFor: d.DownFor}
	switch {
	case d.Kind == store.DeliverReminder:
		e.From = d.To // a reminder has the current state in both
	case d.Kind == store.DeliverCutOff && d.To == store.StateReconnected:
		// notify's cut-off text announces a cut-off; the end of one
		// reads as a recovery of the monitoring host.
		e.Kind, e.ServerName = notify.KindUp, "monitoring host"
	}
	return e
}

// NewSecret returns a fresh webhook signing secret: 32 random bytes, hex.
func NewSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// SendTest sends a clearly marked test message to a channel now, outside
// the queue, and returns the channel's answer.
func SendTest(ctx context.Context, c store.Channel, source string, timeout time.Duration) error {
	sender, err := notify.New(c.URL, c.Secret, notify.WithTimeout(timeout))
	if err != nil {
		return err
	}
	return sender.Send(ctx, notify.TestMessage(c.Name, source, time.Now()))
}
