package store

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Delivery kinds: what a channel is told about. A flip's kind follows from
// its states (see the engines' enqueue statements, held equal by the
// conformance suite): into OFFLINE is down; out of OFFLINE is up; into or
// out of MAINTENANCE is maintenance; ONLINE↔WARNING is warning; a fleet
// event (CUT-OFF, RECONNECTED) is cutoff; a repeat while a server stays
// OFFLINE is reminder. The words are pkg/notify's event kinds.
const (
	DeliverDown        = "down"
	DeliverUp          = "up"
	DeliverWarning     = "warning"
	DeliverMaintenance = "maintenance"
	DeliverCutOff      = "cutoff"
	DeliverReminder    = "reminder"
)

// ChannelKinds are the kinds a channel may subscribe to (--on). Fleet
// events go to all-servers channels that subscribe to down; reminders to
// channels with a remind interval that subscribe to down.
var ChannelKinds = []string{DeliverDown, DeliverUp, DeliverWarning, DeliverMaintenance}

// DefaultChannelKinds is what a channel gets without --on.
var DefaultChannelKinds = []string{DeliverDown, DeliverUp}

// Delivery retry rules: a failed attempt is retried after
// DeliveryRetryBase·2^(attempts-1), at most DeliveryRetryMax apart, until
// DeliveryGiveUpAfter has passed since the delivery was queued.
const (
	DeliveryRetryBase   = 30 * time.Second
	DeliveryRetryMax    = time.Hour
	DeliveryGiveUpAfter = 24 * time.Hour
	// MinRemind is the shortest reminder interval: reminders are enqueued
	// by drains, which run every probe tick at best.
	MinRemind = time.Second
	// MaxChannelURLLen bounds a stored channel URL.
	MaxChannelURLLen = 4096
)

// ChannelSpec is a new notification channel.
type ChannelSpec struct {
	Name string
	// URL names where and how to deliver (see pkg/notify); the store keeps
	// it as given, secrets included, and never logs it.
	URL string
	// Secret signs webhook deliveries; "" for other kinds.
	Secret string
	// Kinds are the delivery kinds the channel wants, a subset of
	// ChannelKinds; empty means DefaultChannelKinds.
	Kinds []string
	// AllServers, or else exactly the servers in ServerIDs.
	AllServers bool
	ServerIDs  []int64
	// Remind repeats a down message this often while the server stays
	// OFFLINE; 0 means never.
	Remind time.Duration
}

// Channel is a stored notification channel.
type Channel struct {
	ID     int64
	Name   string
	URL    string
	Secret string
	Kinds  []string
	// AllServers, or else the servers listed in ServerIDs and
	// ServerNames (same order, by name).
	AllServers  bool
	ServerIDs   []int64
	ServerNames []string
	Remind      time.Duration
	CreatedAt   time.Time
}

// Wants reports whether the channel subscribes to kind.
func (c Channel) Wants(kind string) bool { return slices.Contains(c.Kinds, kind) }

// Validate reports the first problem with a channel spec; the error matches
// ErrInvalid.
func (s ChannelSpec) Validate() error {
	if err := checkText("channel name", s.Name, MaxNameLen, false); err != nil {
		return err
	}
	if err := checkText("channel URL", s.URL, MaxChannelURLLen, false); err != nil {
		return invalidf("channel %q: %v", s.Name, err)
	}
	for _, k := range s.Kinds {
		if !slices.Contains(ChannelKinds, k) {
			return invalidf("channel %q: unknown kind %q (want %s)", s.Name, k, strings.Join(ChannelKinds, ", "))
		}
	}
	if s.AllServers == (len(s.ServerIDs) > 0) {
		return invalidf("channel %q: give either all servers or a list of servers", s.Name)
	}
	if s.Remind != 0 && (s.Remind < MinRemind || s.Remind > MaxStaleAfter) {
		return invalidf("channel %q: remind %s is outside %s-720h", s.Name, s.Remind, MinRemind)
	}
	return nil
}

// KindsText is the stored form of a spec's kinds: comma-separated, in
// ChannelKinds order, DefaultChannelKinds for none.
func (s ChannelSpec) KindsText() string {
	kinds := s.Kinds
	if len(kinds) == 0 {
		kinds = DefaultChannelKinds
	}
	var out []string
	for _, k := range ChannelKinds {
		if slices.Contains(kinds, k) {
			out = append(out, k)
		}
	}
	return strings.Join(out, ",")
}

// ParseKinds splits a stored kinds text.
func ParseKinds(text string) []string {
	if text == "" {
		return nil
	}
	return strings.Split(text, ",")
}

// Flapping defaults: a server that changed state FlapChanges times within
// FlapWindow is flapping; its changes are not notified until it has held
// one state for FlapSettle, and then that settled state always is.
const (
	DefaultFlapChanges = 5
	DefaultFlapWindow  = 15 * time.Minute
	DefaultFlapSettle  = 10 * time.Minute
	// settledWithin: a settled state older than this is not news any more
	// (nothing drained for a day), so the settled query reads a bounded
	// range of flips.
	SettledWithin = 24 * time.Hour
)

// EnqueueParams tunes EnqueueDeliveries.
type EnqueueParams struct {
	// Now, when set, stands in for the store's clock (reminder due times,
	// next attempts, settling). Tests use it instead of sleeping.
	Now time.Time
	// Flapping rule; zero values mean the Default* ones. A flip is held
	// back when it is one of at least FlapChanges flips of its server
	// within FlapWindow and the state before it lasted less than
	// FlapSettle; once the server's latest such flip has held FlapSettle,
	// it is queued (the settled state).
	FlapChanges int
	FlapWindow  time.Duration
	FlapSettle  time.Duration
}

// FlapRule returns p's flapping rule with defaults filled in.
func FlapRule(p EnqueueParams) (changes int, window, settle time.Duration) {
	changes, window, settle = p.FlapChanges, p.FlapWindow, p.FlapSettle
	if changes <= 0 {
		changes = DefaultFlapChanges
	}
	if window <= 0 {
		window = DefaultFlapWindow
	}
	if settle <= 0 {
		settle = DefaultFlapSettle
	}
	return changes, window, settle
}

// Enqueued counts what EnqueueDeliveries queued.
type Enqueued struct {
	Flips, Reminders int
	// Settled: deliveries of a flapping server's settled state.
	Settled int
}

// ClaimParams says which deliveries ClaimDeliveries takes.
type ClaimParams struct {
	// Claimer names the drainer (host and pid); its outcomes are matched
	// against it.
	Claimer string
	// Limit caps the deliveries claimed (default 1000).
	Limit int
	// TTL is how long the claim holds: a claimer that dies leaves its
	// deliveries to be claimed again once it has passed.
	TTL time.Duration
	// Now, when set, stands in for the store's clock.
	Now time.Time
	// ChannelID, when set, claims only that channel's deliveries.
	ChannelID int64
}

// Delivery is a claimed (flip, channel) pair with everything a drain needs
// to send it: the channel, and the flip joined with its server.
type Delivery struct {
	ID int64
	// Channel: its id, name, URL and secret.
	ChannelID     int64
	ChannelName   string
	ChannelURL    string
	ChannelSecret string
	// Kind is one of the Deliver* kinds.
	Kind string
	// Reminder is 0 for the flip itself, n for its nth reminder.
	Reminder int
	FlipID   int64
	// ServerID is 0 for a fleet event; ServerName and Host are then "".
	ServerID   int64
	ServerName string
	Host       string
	From, To   string
	Reason     string
	// At is when the flip happened, or when a reminder fell due.
	At time.Time
	// DownFor is, for an up delivery, how long the server was OFFLINE
	// (since the flip before it, into OFFLINE), and, for a reminder, how
	// long it has been; 0 otherwise or when unknown.
	DownFor time.Duration
	// Attempts made before this claim.
	Attempts  int
	CreatedAt time.Time
}

// DeliveryOutcome is what a drain did with one claimed delivery.
type DeliveryOutcome struct {
	ID int64
	// Sent: the channel accepted it. Otherwise, Unsent: never attempted
	// (the drain ran out of time), the claim is released and no attempt
	// counted. Otherwise the attempt failed with Error.
	Sent   bool
	Unsent bool
	Error  string
}

// OutcomeParams is a batch of outcomes of one claimer.
type OutcomeParams struct {
	Claimer  string
	Outcomes []DeliveryOutcome
	// At, when set, stands in for the store's clock (the attempt's time,
	// from which backoff and giving up are counted).
	At time.Time
}

// OutcomeResult counts what RecordDeliveryOutcomes recorded.
type OutcomeResult struct {
	Delivered, Retrying, GaveUp, Released int
}

// DeliveryStats summarises delivery health for doctor and metrics.
type DeliveryStats struct {
	Now time.Time
	// Backlog counts deliveries neither delivered nor given up.
	Backlog int
	// OldestPending is when the oldest of them was queued; nil if none.
	OldestPending *time.Time
	// Failing lists channels whose most recent attempt failed, by name.
	Failing []ChannelFailure
}

// ChannelFailure is a channel whose most recent delivery attempt failed.
type ChannelFailure struct {
	ChannelID   int64
	ChannelName string
	// LastError is that attempt's error; LastAttempt its time.
	LastError   string
	LastAttempt time.Time
	// Pending counts its deliveries still being retried; GaveUp those it
	// gave up on in the last DeliveryGiveUpAfter.
	Pending, GaveUp int
}

// DeliveryBackoff is the wait after the nth failed attempt (n ≥ 1).
func DeliveryBackoff(n int) time.Duration {
	d := DeliveryRetryBase
	for i := 1; i < n && d < DeliveryRetryMax; i++ {
		d *= 2
	}
	return min(d, DeliveryRetryMax)
}

// DefaultKeepDeliveries is how long delivery records are kept (pruned by
// PruneHistory's DeliveriesBefore).
const DefaultKeepDeliveries = 30 * 24 * time.Hour

// ClaimLimits returns p's limit and TTL with defaults filled in, so both
// engines agree: 1000 deliveries, held 5 minutes.
func ClaimLimits(p ClaimParams) (limit int, ttl time.Duration) {
	limit, ttl = p.Limit, p.TTL
	if limit <= 0 {
		limit = 1000
	}
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	return limit, ttl
}

// MaxDeliveryErrorLen bounds a stored delivery error: enough for one line
// of why, not a receiver's whole error page.
const MaxDeliveryErrorLen = 500

// TrimDeliveryError is the stored form of an attempt's error: its first
// MaxDeliveryErrorLen bytes, cut at a character boundary.
func TrimDeliveryError(msg string) string {
	if len(msg) <= MaxDeliveryErrorLen {
		return msg
	}
	cut := MaxDeliveryErrorLen
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut]
}

// Count adds one recorded outcome to r.
func (r *OutcomeResult) Count(sent, unsent, gaveUp bool) {
	switch {
	case sent:
		r.Delivered++
	case unsent:
		r.Released++
	case gaveUp:
		r.GaveUp++
	default:
		r.Retrying++
	}
}

// DeliveryEvent is a delivery's end: sent, or given up.
type DeliveryEvent struct {
	ID int64
	// ChannelURL is the channel's URL, secrets included: the caller names
	// its kind (notify.ChannelKind) and shows nothing else of it.
	ChannelURL string
	// Sent: delivered; otherwise given up after DeliveryGiveUpAfter.
	Sent bool
	At   time.Time
}
