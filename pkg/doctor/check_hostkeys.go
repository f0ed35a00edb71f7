package doctor

import (
	"fmt"
	"strings"
)

// checkHostKeys names the servers held back because they presented a host
// key that differs from the pinned one.
func (d *doctor) checkHostKeys() Result {
	r := Result{Check: CheckHostKeys}
	if d.serversErr != nil {
		return readFailed(CheckHostKeys, "list servers", d.serversErr)
	}
	var changed []string
	for _, sv := range d.servers {
		if sv.SeenHostKey != nil {
			changed = append(changed, sv.Name)
		}
	}
	if len(changed) == 0 {
		r.Status, r.Message = OK, "no server presented a changed host key"
		return r
	}
	r.Status = Warn
	r.Message = fmt.Sprintf("%d server(s) presented a host key that differs from the pinned one and get no heartbeat until an admin decides: %s",
		len(changed), strings.Join(changed, ", "))
	r.Fix = fmt.Sprintf("confirm with the server's owner that the key changed (heartbeat servers show %s prints both fingerprints), then heartbeat servers trust %s", changed[0], changed[0])
	return r
}
