package store

import (
	"fmt"
	"regexp"
	"strconv"
)

// DefaultLocation is the location of a probe host not given --location.
const DefaultLocation = "default"

// MaxLocationLen bounds a location name: it is shown in every status
// line that names locations.
const MaxLocationLen = 64

var locationName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ValidateLocation checks a probe location's name: 1 to 64 letters,
// digits, dots, dashes and underscores, starting with a letter or digit,
// so it reads unquoted in "seen from fra, ams" and in metric labels.
func ValidateLocation(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("location must not be empty: %w", ErrInvalid)
	case len(name) > MaxLocationLen:
		return fmt.Errorf("location %.20q… is %d characters; at most %d: %w", name, len(name), MaxLocationLen, ErrInvalid)
	case !locationName.MatchString(name):
		return fmt.Errorf("location %q: use letters, digits, '.', '-' and '_' only (no spaces), starting with a letter or digit: %w", name, ErrInvalid)
	}
	return nil
}

// Store-wide settings (Store.Setting), set with `heartbeat config set`.
const (
	// SettingQuorum is how many probe locations must say a server failed
	// before it turns OFFLINE (default 1: the source system's rule).
	SettingQuorum = "quorum"
)

// DefaultQuorum is the quorum when none is set.
const DefaultQuorum = 1

// Settings lists the known settings with their defaults, in the order
// `config list` shows them.
var Settings = []struct{ Key, Default, Help string }{
	{SettingQuorum, strconv.Itoa(DefaultQuorum), "probe locations that must say a server failed before it turns OFFLINE"},
}

// ParseQuorum reads a quorum setting: a whole number from 1.
func ParseQuorum(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("quorum %q: want a whole number of locations from 1: %w", v, ErrInvalid)
	}
	return n, nil
}
