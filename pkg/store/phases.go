package store

import "time"

// PhaseColumns is how many phase_*_us columns a heartbeat row has, in the
// order of PhasesFromMicros.
const PhaseColumns = 5

// PhasesFromMicros turns the heartbeats table's phase_*_us columns (dial,
// banner, kex, auth, exec, in microseconds) into Phases; both engines scan
// them the same way.
func PhasesFromMicros(us [PhaseColumns]int64) Phases {
	return Phases{
		Dial: time.Duration(us[0]) * time.Microsecond, Banner: time.Duration(us[1]) * time.Microsecond,
		Kex: time.Duration(us[2]) * time.Microsecond, Auth: time.Duration(us[3]) * time.Microsecond,
		Exec: time.Duration(us[4]) * time.Microsecond,
	}
}

// Micros is the inverse of PhasesFromMicros, for writing the columns.
func (p Phases) Micros() [PhaseColumns]int64 {
	return [PhaseColumns]int64{p.Dial.Microseconds(), p.Banner.Microseconds(), p.Kex.Microseconds(), p.Auth.Microseconds(), p.Exec.Microseconds()}
}
