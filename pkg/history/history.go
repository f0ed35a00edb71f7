// Package history turns recorded flips into what people ask of a monitor's
// past: how long each state lasted, and the uptime over a window. It is
// pure (no I/O, no clock of its own): the caller passes the flips of a
// window and the store's clock, so every host computes the same figures.
package history

import (
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

// Span is a stretch of time a server spent in one state.
type Span struct {
	State    string
	From, To time.Time
	// Reason is why the server entered State ("" when the window opened
	// in it).
	Reason string
}

// Duration is how long the span lasted.
func (s Span) Duration() time.Duration { return s.To.Sub(s.From) }

// Spans cuts [from, to) into the states of one server. flips are that
// server's flips at or after from, oldest first; current is the state it
// is in now (store.ServerStatus.State), which is the state of the whole
// window when no flip falls in it. Time before the server's first
// evaluation (a flip whose From is "") belongs to no span.
func Spans(flips []store.Flip, current string, from, to time.Time) []Span {
	var out []Span
	for s := range EachSpan(flips, current, from, to) {
		out = append(out, s)
	}
	return out
}

// EachSpan yields the spans Spans returns, without holding them: the
// fleet's 24-hour uptime (UptimeOf) walks 100,000 servers' spans and
// keeps none.
func EachSpan(flips []store.Flip, current string, from, to time.Time) iter.Seq[Span] {
	return func(yield func(Span) bool) {
		state, start, reason := current, from, ""
		if len(flips) > 0 {
			state = flips[0].From
		}
		for _, f := range flips {
			if f.At.After(to) {
				break
			}
			at := f.At
			if at.Before(from) {
				at = from
			}
			if state != "" && at.After(start) {
				if !yield(Span{State: state, From: start, To: at, Reason: reason}) {
					return
				}
			}
			state, start, reason = f.To, at, f.Reason
		}
		if state != "" && to.After(start) {
			yield(Span{State: state, From: start, To: to, Reason: reason})
		}
	}
}

// Uptime is the share of the monitored time in spans that a server was not
// OFFLINE, as a percentage. Time in MAINTENANCE or DISABLED is not
// monitored and counts neither way; ok is false when no time was
// monitored at all (a new or long-disabled server has no uptime figure).
func Uptime(spans []Span) (pct float64, ok bool) {
	return UptimeOf(slices.Values(spans))
}

// UptimeOf is Uptime over spans as they are yielded.
func UptimeOf(spans iter.Seq[Span]) (pct float64, ok bool) {
	var up, total time.Duration
	for s := range spans {
		switch s.State {
		case store.StateMaintenance, store.StateDisabled:
			continue
		case store.StateOffline:
		default:
			up += s.Duration()
		}
		total += s.Duration()
	}
	if total <= 0 {
		return 0, false
	}
	return 100 * float64(up) / float64(total), true
}

// Day is one calendar day (UTC) of a server's uptime bar.
type Day struct {
	Date time.Time // midnight UTC
	// Uptime is the day's percentage; OK is false when nothing of the day
	// was monitored.
	Uptime float64
	OK     bool
}

// Daily splits spans into the last n UTC days ending with now's day,
// oldest first, with each day's uptime.
func Daily(spans []Span, now time.Time, n int) []Day {
	now = now.UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	out := make([]Day, n)
	for i := range n {
		start := today.AddDate(0, 0, i-n+1)
		end := start.AddDate(0, 0, 1)
		if end.After(now) {
			end = now
		}
		out[i] = Day{Date: start}
		out[i].Uptime, out[i].OK = Uptime(Clip(spans, start, end))
	}
	return out
}

// Clip returns the parts of spans that fall inside [from, to).
func Clip(spans []Span, from, to time.Time) []Span {
	var out []Span
	for _, s := range spans {
		if !s.To.After(from) || !s.From.Before(to) {
			continue
		}
		if s.From.Before(from) {
			s.From = from
		}
		if s.To.After(to) {
			s.To = to
		}
		out = append(out, s)
	}
	return out
}

// Windows are the uptime windows `heartbeat uptime` and the API report.
var Windows = []struct {
	Name string
	D    time.Duration
}{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}

// ByServer groups flips by server, dropping fleet events.
func ByServer(flips []store.Flip) map[int64][]store.Flip {
	out := make(map[int64][]store.Flip)
	for _, f := range flips {
		if f.ServerID != 0 {
			out[f.ServerID] = append(out[f.ServerID], f)
		}
	}
	return out
}

// ParseSince reads a window's start: a Go duration ("90m", "48h"), a
// number of days ("7d", which Go's durations lack) or an RFC 3339 time,
// which must lie before now (the store's clock).
func ParseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		if !t.Before(now) {
			return time.Time{}, fmt.Errorf("%s is not in the past", v)
		}
		return t.UTC(), nil
	}
	bad := fmt.Errorf("%q: give a duration (90m, 48h, 7d) or an RFC 3339 time", v)
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 3650 {
			return time.Time{}, bad
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			return time.Time{}, bad
		}
	}
	return now.Add(-d), nil
}

// Flapping applies the notification drain's flapping rule to one server's
// flips (oldest first) at now: at least store.DefaultFlapChanges changes
// within store.DefaultFlapWindow, the latest one less than
// store.DefaultFlapSettle ago. While it holds, the server's notifications
// are paused; status shows it so nobody wonders why no message came.
func Flapping(flips []store.Flip, now time.Time) bool {
	if len(flips) < store.DefaultFlapChanges {
		return false
	}
	last := flips[len(flips)-1]
	if now.Sub(last.At) >= store.DefaultFlapSettle {
		return false
	}
	recent := 0
	for _, f := range flips {
		if f.From != "" && !f.At.Before(now.Add(-store.DefaultFlapWindow)) {
			recent++
		}
	}
	return recent >= store.DefaultFlapChanges
}
