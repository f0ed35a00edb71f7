package output

import "github.com/stacksense/heartbeat/pkg/status"

// Palette colours status words; the zero Palette leaves them plain. The CLI
// enables colour only when stdout is a terminal and NO_COLOR is unset
// (https://no-color.org).
type Palette struct {
	Enabled bool
}

// State renders a status word, coloured by severity when enabled.
func (p Palette) State(s status.State) string {
	if !p.Enabled {
		return string(s)
	}
	code := ""
	switch s {
	case status.Online:
		code = "32" // green
	case status.Warning:
		code = "33" // yellow
	case status.Offline:
		code = "1;31" // bold red
	case status.Disabled:
		code = "2" // dim
	case status.Maintenance:
		code = "36" // cyan
	}
	return "\x1b[" + code + "m" + string(s) + "\x1b[0m"
}
