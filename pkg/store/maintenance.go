package store

import (
	"fmt"
	"strings"
	"time"

	"github.com/adhocore/gronx"
)

// Maintenance limits: a window or scheduled occurrence shorter than a
// minute cannot be seen by a 30-second evaluation tick, and one longer
// than 30 days is a server taken out of monitoring (disable it instead).
const (
	MinMaintenance = time.Minute
	MaxMaintenance = 30 * 24 * time.Hour
)

// MaintenanceSpec is a request to start maintenance windows now.
type MaintenanceSpec struct {
	// ServerIDs are the servers to put in maintenance; All means every
	// server registered at the time of the call (exactly one of the two).
	ServerIDs []int64
	All       bool
	// Until is when the windows end; zero means the store's clock + For.
	Until time.Time
	For   time.Duration
	// Reason is required; By is who started it (the OS user of the CLI).
	Reason string
	By     string
}

// Validate checks what can be checked without the store's clock: Until
// must still be after the store's now (the store checks that, ErrInvalid).
func (m MaintenanceSpec) Validate() error {
	if m.All == (len(m.ServerIDs) > 0) {
		return fmt.Errorf("%w: name servers or all of them, not both or neither", ErrInvalid)
	}
	if strings.TrimSpace(m.Reason) == "" {
		return fmt.Errorf("%w: a maintenance reason is required", ErrInvalid)
	}
	if m.Until.IsZero() && (m.For < MinMaintenance || m.For > MaxMaintenance) {
		return fmt.Errorf("%w: maintenance must last between %v and %v, got %v", ErrInvalid, MinMaintenance, MaxMaintenance, m.For)
	}
	return nil
}

// MaintenanceWindow is one server's maintenance window. The server is in
// maintenance while StartsAt <= now < End().
type MaintenanceWindow struct {
	ID         int64
	ServerID   int64
	ServerName string
	StartsAt   time.Time
	EndsAt     time.Time
	// EndedAt is set when the window was ended early.
	EndedAt *time.Time
	Reason  string
	By      string
	// ScheduleID and ScheduleName name the schedule that made the window
	// (0 and "" for one started by hand, or whose schedule is gone).
	ScheduleID   int64
	ScheduleName string
}

// End is when the window ends or ended.
func (w MaintenanceWindow) End() time.Time {
	if w.EndedAt != nil {
		return *w.EndedAt
	}
	return w.EndsAt
}

// ScheduleSpec is a recurring maintenance window: every time Cron fires
// (in UTC, the store's clock), the servers are in maintenance for
// Duration.
type ScheduleSpec struct {
	Name     string
	Cron     string
	Duration time.Duration
	// All: every server at the time of each occurrence; else ServerIDs.
	All       bool
	ServerIDs []int64
	Reason    string
	By        string
}

// Validate checks a schedule spec (ErrInvalid).
func (sp ScheduleSpec) Validate() error {
	if strings.TrimSpace(sp.Name) == "" {
		return fmt.Errorf("%w: a schedule needs a name", ErrInvalid)
	}
	if err := ValidateCron(sp.Cron); err != nil {
		return err
	}
	if sp.Duration < MinMaintenance || sp.Duration > MaxMaintenance {
		return fmt.Errorf("%w: a scheduled window must last between %v and %v, got %v", ErrInvalid, MinMaintenance, MaxMaintenance, sp.Duration)
	}
	if sp.All == (len(sp.ServerIDs) > 0) {
		return fmt.Errorf("%w: a schedule names servers or all of them, not both or neither", ErrInvalid)
	}
	if strings.TrimSpace(sp.Reason) == "" {
		return fmt.Errorf("%w: a maintenance reason is required", ErrInvalid)
	}
	return nil
}

// MaintenanceSchedule is a stored ScheduleSpec.
type MaintenanceSchedule struct {
	ID         int64
	Name       string
	Cron       string
	Duration   time.Duration
	AllServers bool
	// ServerIDs and ServerNames (same order, by name) when not AllServers.
	ServerIDs   []int64
	ServerNames []string
	Reason      string
	By          string
	CreatedAt   time.Time
	// LastStart is the latest occurrence materialised into windows.
	LastStart *time.Time
}

// ScheduleBy is the By of the windows a schedule makes.
func ScheduleBy(name string) string { return "schedule " + name }

// cronHorizon bounds the search for an occurrence: an expression that
// never fires within it ("0 0 30 2 *") is refused.
const cronHorizon = 5 * 366 * 24 * time.Hour

// ValidateCron accepts a standard five-field cron expression (minute hour
// day-of-month month day-of-week, names like SUN and JAN, ranges, steps,
// L and W as github.com/adhocore/gronx reads them) or one of the macros
// @hourly, @daily, @weekly, @monthly, @yearly, that fires at least once
// in five years. Seconds and year fields are refused: a window is
// scheduled to the minute. Errors are ErrInvalid.
func ValidateCron(expr string) error {
	e := strings.TrimSpace(expr)
	switch {
	case e == "":
		return fmt.Errorf("%w: empty cron expression", ErrInvalid)
	case strings.HasPrefix(e, "@"):
		switch e {
		case "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight":
		default:
			return fmt.Errorf("%w: cron expression %q: unknown macro (use @hourly, @daily, @weekly, @monthly or @yearly)", ErrInvalid, expr)
		}
	case len(strings.Fields(e)) != 5:
		return fmt.Errorf("%w: cron expression %q: want 5 fields (minute hour day-of-month month day-of-week), got %d", ErrInvalid, expr, len(strings.Fields(e)))
	}
	if _, err := gronx.Segments(e); err != nil {
		return fmt.Errorf("%w: cron expression %q: %v", ErrInvalid, expr, err)
	}
	if !gronx.IsValid(e) {
		return fmt.Errorf("%w: cron expression %q is not valid", ErrInvalid, expr)
	}
	// A fixed reference, so the answer does not depend on today's date.
	ref := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	next, err := gronx.NextTickAfter(e, ref, true)
	if err != nil || next.Sub(ref) > cronHorizon {
		return fmt.Errorf("%w: cron expression %q never fires", ErrInvalid, expr)
	}
	return nil
}

// CronOccurrence returns the start of the occurrence of a schedule that
// is in progress at now (start <= now < start+d), if one is.
func CronOccurrence(expr string, d time.Duration, now time.Time) (time.Time, bool) {
	now = now.UTC()
	start, err := gronx.PrevTickBefore(strings.TrimSpace(expr), now.Truncate(time.Minute), true)
	if err != nil {
		return time.Time{}, false
	}
	start = start.UTC()
	if start.After(now) || !now.Before(start.Add(d)) {
		return time.Time{}, false
	}
	return start, true
}

// CronNext returns the first occurrence of expr strictly after t.
func CronNext(expr string, t time.Time) (time.Time, error) {
	next, err := gronx.NextTickAfter(strings.TrimSpace(expr), t.UTC(), false)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: cron expression %q: %v", ErrInvalid, expr, err)
	}
	return next.UTC(), nil
}
