package report

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

// Vantage is what the probe locations can say right now: the quorum, the
// votes that take a server OFFLINE, and which locations may not vote
// because their own last runs were cut off. The zero Vantage is the
// source system's rule (stale is OFFLINE).
type Vantage struct {
	// Quorum is the store's setting (store.SettingQuorum).
	Quorum int
	// Need is the quorum capped at the locations that can vote now
	// (status.Need).
	Need int
	// Running lists the locations with a host whose last run finished
	// within status.ProbeOverdue, by name.
	Running []string
	// Muted are the running locations whose running hosts were all cut
	// off: they do not vote.
	Muted map[string]bool
}

// NewVantage derives the vantage from each host's last run (NewHosts)
// and the quorum setting.
func NewVantage(h Hosts, quorum int) Vantage {
	v := Vantage{Quorum: quorum, Muted: map[string]bool{}}
	cut := map[string]bool{}
	for _, s := range h.Hosts {
		if s.Age > status.ProbeOverdue {
			continue
		}
		loc := s.Run.Location
		if loc == "" {
			loc = store.DefaultLocation
		}
		all, seen := cut[loc]
		if !seen {
			v.Running = append(v.Running, loc)
			all = true
		}
		cut[loc] = all && s.CutOff
	}
	voters := 0
	for loc, c := range cut {
		if c {
			v.Muted[loc] = true
		} else {
			voters++
		}
	}
	v.Need = status.Need(quorum, voters)
	return v
}

// LoadVantage reads the quorum setting and, on a store where hosts share
// the fleet (store.ProbeLeaser), each host's last run.
func LoadVantage(ctx context.Context, s store.Store) (Vantage, error) {
	quorum, err := ReadQuorum(ctx, s)
	if err != nil {
		return Vantage{}, err
	}
	leaser, ok := s.(store.ProbeLeaser)
	if !ok {
		return NewVantage(Hosts{}, quorum), nil
	}
	runs, now, err := leaser.HostRuns(ctx, HostWindow)
	if err != nil {
		return Vantage{}, err
	}
	return NewVantage(NewHosts(now, runs), quorum), nil
}

// ReadQuorum reads the store's quorum setting (store.DefaultQuorum when
// unset).
func ReadQuorum(ctx context.Context, s store.Store) (int, error) {
	v, ok, err := s.Setting(ctx, store.SettingQuorum)
	if err != nil || !ok {
		return store.DefaultQuorum, err
	}
	q, err := store.ParseQuorum(v)
	if err != nil {
		return 0, fmt.Errorf("the store's quorum setting: %w", err)
	}
	return q, nil
}

// LocationView is one location's word on a server in `status --json` and
// the API (README "status JSON").
type LocationView struct {
	Location string `json:"location"`
	// Says is "seen" (a success within stale-after), "failed" (a recent
	// failed probe) or "silent" (no recent probe).
	Says string `json:"says"`
	// LastOK and LastProbe are RFC 3339 UTC; LastOK is null if this
	// location never saw the server.
	LastOK     *time.Time `json:"last_ok"`
	LastProbe  time.Time  `json:"last_probe"`
	ErrorClass string     `json:"error_class"`
	// CutOff: the location's own last run was cut off, so it does not
	// vote.
	CutOff bool `json:"cut_off"`
}

var words = map[status.Word]string{status.Saw: "seen", status.Failed: "failed", status.Silent: "silent"}

// addLocations fills the row's per-location views and, when the quorum
// keeps a stale server up, judges it as if fresh.
func (row *ServerStatus) addLocations(now time.Time, s store.ServerStatus, staleAfter time.Duration, v Vantage) {
	down, probed := 0, 0
	for _, l := range s.Locations {
		w := status.LocationWord(now, l.LastOK, l.LastProbe, staleAfter)
		lv := LocationView{Location: l.Location, Says: words[w], LastOK: l.LastOK, LastProbe: l.LastProbe, CutOff: v.Muted[l.Location]}
		if w != status.Saw {
			lv.ErrorClass = l.ErrorClass
		}
		if w != status.Silent {
			probed++
		}
		if w == status.Failed && !lv.CutOff {
			down++
		}
		row.Locations = append(row.Locations, lv)
	}
	if len(row.Locations) > 0 {
		row.SeenFrom = SeenFrom(row.Locations)
	}
	if row.Status == status.Offline && s.Enabled && s.Mode != store.ModePush && s.LastHeartbeat != nil &&
		!status.QuorumOffline(v.Need, down, probed) {
		row.QuorumHeld = true
		row.Status = status.Online
		if s.ActiveAlerts > 0 {
			row.Status = status.Warning
		}
	}
}

// SeenFrom says per location what it saw, for people: "seen from fra,
// ams; nyc: timeout; sgp: silent".
func SeenFrom(locs []LocationView) string {
	var seen, rest []string
	for _, l := range locs {
		name := output.Escape(l.Location)
		switch {
		case l.Says == "seen":
			seen = append(seen, name)
			continue
		case l.Says == "failed" && l.ErrorClass != "":
			name += ": " + output.Escape(l.ErrorClass)
		default:
			name += ": " + l.Says
		}
		if l.CutOff {
			name += " (cut off)"
		}
		rest = append(rest, name)
	}
	var parts []string
	if len(seen) > 0 {
		parts = append(parts, "seen from "+strings.Join(seen, ", "))
	}
	return strings.Join(append(parts, rest...), "; ")
}

// Line describes the locations and the quorum for `status --verbose`
// and doctor: "locations: ams, fra, nyc (nyc cut off: it does not vote);
// quorum 2". Nothing when one location runs and the quorum is 1.
func (v Vantage) Line() string {
	if len(v.Running) < 2 && v.Quorum <= 1 {
		return ""
	}
	locs := make([]string, len(v.Running))
	var muted []string
	for i, l := range v.Running {
		locs[i] = output.Escape(l)
		if v.Muted[l] {
			muted = append(muted, output.Escape(l))
		}
	}
	sort.Strings(locs)
	sort.Strings(muted)
	line := "locations: " + strings.Join(locs, ", ")
	if len(locs) == 0 {
		line = "locations: none running"
	}
	if len(muted) > 0 {
		line += " (" + strings.Join(muted, ", ") + " cut off: not voting)"
	}
	line += fmt.Sprintf("; quorum %d", v.Quorum)
	if v.Need != v.Quorum {
		line += fmt.Sprintf(" (%d while fewer locations can vote)", v.Need)
	}
	return line
}
