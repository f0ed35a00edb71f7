package store

import (
	"cmp"
	"slices"
	"time"
)

// Evaluated states, as server_states and flips hold them. They are the
// words of pkg/status (which imports nothing of ours, so they are spelled
// again here; a test keeps the two equal).
const (
	StateOnline      = "ONLINE"
	StateWarning     = "WARNING"
	StateOffline     = "OFFLINE"
	StateDisabled    = "DISABLED"
	StateMaintenance = "MAINTENANCE"
)

// InternState returns the state spelled by b as one of the constants
// above, so reading a fleet's flips does not allocate a string per state
// (an unknown word is copied).
func InternState(b []byte) string {
	for _, s := range [...]string{StateOnline, StateOffline, StateWarning, StateMaintenance, StateDisabled, StateCutOff, StateReconnected, ""} {
		if string(b) == s {
			return s
		}
	}
	return string(b)
}

// FlipsOf returns server id's flips from flips ordered by server, as
// Store.FlipStates returns them.
func FlipsOf(flips []Flip, id int64) []Flip {
	i, found := slices.BinarySearchFunc(flips, id, func(f Flip, id int64) int { return cmp.Compare(f.ServerID, id) })
	if !found {
		return nil
	}
	j := i + 1
	for j < len(flips) && flips[j].ServerID == id {
		j++
	}
	return flips[i:j:j]
}

// FlipAppender gathers a long read of flips in fixed-size chunks and
// copies them into one slice at the end: appending 100,000 flips to one
// growing slice copied them about five times over, half of the read's
// time.
type FlipAppender struct {
	chunks [][]Flip
	n      int
}

const flipChunk = 4096

// Add appends f.
func (a *FlipAppender) Add(f Flip) {
	if a.n%flipChunk == 0 {
		a.chunks = append(a.chunks, make([]Flip, 0, flipChunk))
	}
	last := &a.chunks[len(a.chunks)-1]
	*last = append(*last, f)
	a.n++
}

// Flips returns what was added, in order (nil when nothing was).
func (a *FlipAppender) Flips() []Flip {
	if a.n == 0 {
		return nil
	}
	if len(a.chunks) == 1 {
		return a.chunks[0]
	}
	out := make([]Flip, 0, a.n)
	for _, c := range a.chunks {
		out = append(out, c...)
	}
	return out
}

// Fleet events: flips that belong to no server (ServerID 0).
const (
	// StateCutOff: a run found the monitoring host cut off, so its
	// silence recorded no down-flips for ssh servers.
	StateCutOff = "CUT-OFF"
	// StateReconnected: the first evaluation after a cut-off that no
	// longer sees one.
	StateReconnected = "RECONNECTED"
)

// DefaultStaleAfter is a server's freshness window unless it has its own:
// the source system's 60 seconds, two missed 30-second ticks.
const DefaultStaleAfter = 60 * time.Second

// Bounds on a server's stale-after: a window under a second cannot be met
// by any clock, and one over 30 days is a server nobody is watching.
const (
	MinStaleAfter = time.Second
	MaxStaleAfter = 30 * 24 * time.Hour
)

// Flip is a recorded change of a server's evaluated state, or a fleet event
// (ServerID 0, To StateCutOff or StateReconnected).
type Flip struct {
	ID         int64
	ServerID   int64
	ServerName string
	// At is when the change happened: for a down-flip, the moment the last
	// heartbeat went stale (last heartbeat + stale-after), not when an
	// evaluator noticed; for a recovery, the heartbeat that ended it.
	At time.Time
	// From is "" for a server's first evaluation.
	From, To string
	Reason   string
	// Notify is false for changes kept for history only: a server's first
	// state, its first heartbeat ever, and entering or leaving DISABLED.
	Notify bool
}

// EvalParams says how Evaluate treats this round.
type EvalParams struct {
	// HostCutOff: the last probe run found the monitoring host cut off, so
	// ssh servers that would go OFFLINE keep their state and one fleet
	// event (StateCutOff, with CutOffReason) is recorded instead, unless
	// the last fleet event already is one.
	HostCutOff   bool
	CutOffReason string
	// CutOffHost names the monitoring host that was cut off: the fleet
	// event carries it, so its message can say which host.
	CutOffHost string
	// Need is how many probe locations must say a stale ssh server
	// failed before it goes OFFLINE (status.QuorumOffline; the quorum
	// capped at the locations that can vote); Muted are the locations
	// that do not vote (their own last runs were cut off). Need 1 or
	// less is the source system's rule. Engines without per-location
	// results ignore both.
	Need  int
	Muted []string
	// MinVoteWindow is the least age at which a failed probe still
	// counts as a vote (status.VoteWindow: the server's stale-after, but
	// never less than this).
	MinVoteWindow time.Duration
}

// EvalResult is what one Evaluate recorded.
type EvalResult struct {
	// Now is the store's clock the round was judged at.
	Now time.Time
	// Flips are the changes this call recorded, fleet events included,
	// ordered by At. A change another evaluator recorded first is not in
	// it.
	Flips []Flip
	// Suppressed counts ssh servers kept from going OFFLINE because the
	// host was cut off.
	Suppressed int
}

// FlipQuery selects flips for history and uptime. The state a window
// opened in is the From of its first flip, or, with no flip in it, the
// server's current state (ServerStatus.State), so no query reaches back
// before Since.
type FlipQuery struct {
	// ServerID limits the flips to one server; 0 means every server, fleet
	// events included.
	ServerID int64
	// Since: flips at or after it.
	Since time.Time
	// AfterID, when positive, keeps only flips with a larger id: a reader
	// that polls (the /metrics counter) asks for what is new since its
	// last read.
	AfterID int64
	// ServerIDs, when not empty, limits the flips to these servers (fleet
	// events excluded): the status page reads the history of the rows it
	// shows, not of the whole fleet.
	ServerIDs []int64
	// Newest, when positive, keeps only the newest that many of the
	// flips that match (still returned oldest first).
	Newest int
}
