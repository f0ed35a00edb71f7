package status

import "time"

// Word is what one probe location says of a server.
type Word int

// The words a location can say.
const (
	// Saw: its last success is within the server's stale-after.
	Saw Word = iota
	// Failed: it probed the server recently (see VoteWindow) and that
	// probe failed.
	Failed
	// Silent: it has not probed the server recently.
	Silent
)

// VoteWindow is how recent a location's failed probe must be to count as
// a vote: the server's stale-after, but never less than ProbeOverdue, so
// a location that probes every 30 s always has a recent word on a server
// whose stale-after is shorter than its tick.
func VoteWindow(staleAfter time.Duration) time.Duration {
	return max(staleAfter, ProbeOverdue)
}

// LocationWord is what a location whose last success was lastOK (nil:
// never) and last probe lastProbe says at now.
func LocationWord(now time.Time, lastOK *time.Time, lastProbe time.Time, staleAfter time.Duration) Word {
	switch {
	case lastOK != nil && now.Sub(*lastOK) <= staleAfter:
		return Saw
	case now.Sub(lastProbe) <= VoteWindow(staleAfter) && (lastOK == nil || lastOK.Before(lastProbe)):
		return Failed
	default:
		return Silent
	}
}

// QuorumOffline decides whether a server whose heartbeat is stale (no
// location saw it within its stale-after) is OFFLINE, when need votes
// are needed: down locations that may vote said it failed and probed
// locations (voting or not) probed it recently.
//
// need is the quorum capped at the number of locations that can vote now
// (a location that stopped running, or whose own last run was cut off,
// cannot), so a quorum of 2 with one location left falls back to that
// location's word rather than keeping a dead server up. With need 1 or
// less the source system's rule holds: stale is OFFLINE. A server that
// no location probed recently is OFFLINE too: nobody can vouch for it.
func QuorumOffline(need, down, probed int) bool {
	if need <= 1 || probed == 0 {
		return true
	}
	return down >= need
}

// Need is the number of votes that take a server OFFLINE: the quorum,
// capped at the locations that can vote now; at least 1.
func Need(quorum, voters int) int {
	return max(1, min(quorum, voters))
}
