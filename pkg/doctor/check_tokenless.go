package doctor

import (
	"fmt"
	"strings"
)

// checkTokenless warns while any server accepts pushes without a token:
// the allowance is a migration aid for the source system's agent, and an
// address is weaker proof than a token, so it should not outlive the move.
func (d *doctor) checkTokenless() Result {
	r := Result{Check: CheckTokenless}
	if d.serversErr != nil {
		return readFailed(CheckTokenless, "list servers", d.serversErr)
	}
	var open []string
	for _, sv := range d.servers {
		if len(sv.TokenlessFrom) > 0 {
			open = append(open, sv.Name)
		}
	}
	if len(open) == 0 {
		r.Status, r.Message = OK, "no server accepts pushes without a token"
		return r
	}
	r.Status = Warn
	r.Message = fmt.Sprintf("%d server(s) accept pushes without a token from their allowed addresses (the source system's agent): %s",
		len(open), strings.Join(open, ", "))
	r.Fix = fmt.Sprintf("deploy tokens (heartbeat servers token %s, then heartbeat push on that server; heartbeat_tokenless_pushes_total on /metrics stops growing when no old agent is left), then switch off with heartbeat servers set %s --no-tokenless",
		open[0], open[0])
	return r
}
