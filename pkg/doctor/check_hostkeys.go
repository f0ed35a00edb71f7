package doctor

import (
	"fmt"
	"strings"
)

// checkHostKeys names the servers held back because they presented a host
// key that differs from the pinned one, and apart from them those pinned
// to a certificate authority (servers trust --ca) that presented no valid
// certificate from it: for those the cure is usually a renewed
// certificate, not trusting another key. A CA-pinned server whose
// certificate passes has no last-seen key (an accepted certificate clears
// it), so it is not named.
func (d *doctor) checkHostKeys() Result {
	r := Result{Check: CheckHostKeys}
	if d.serversErr != nil {
		return readFailed(CheckHostKeys, "list servers", d.serversErr)
	}
	var changed, refusedCert []string
	for _, sv := range d.servers {
		switch {
		case sv.SeenHostKey == nil:
		case sv.HostKeyIsCA:
			refusedCert = append(refusedCert, sv.Name)
		default:
			changed = append(changed, sv.Name)
		}
	}
	if len(changed) == 0 && len(refusedCert) == 0 {
		r.Status, r.Message = OK, "no server presented a changed host key"
		return r
	}
	r.Status = Warn
	var msgs, fixes []string
	if len(changed) > 0 {
		msgs = append(msgs, fmt.Sprintf("%d server(s) presented a host key that differs from the pinned one and get no heartbeat until an admin decides: %s",
			len(changed), strings.Join(changed, ", ")))
		fixes = append(fixes, fmt.Sprintf("confirm with the server's owner that the key changed (heartbeat servers show %s prints both fingerprints), then heartbeat servers trust %s", changed[0], changed[0]))
	}
	if len(refusedCert) > 0 {
		msgs = append(msgs, fmt.Sprintf("%d server(s) pinned to a CA presented no valid host certificate from it and get no heartbeat: %s",
			len(refusedCert), strings.Join(refusedCert, ", ")))
		fixes = append(fixes, fmt.Sprintf("heartbeat status --verbose says why (expired, principal, another CA); renew the host certificate of %s or pin its CA again (heartbeat servers trust %s --ca FILE)", refusedCert[0], refusedCert[0]))
	}
	r.Message = strings.Join(msgs, "; ")
	r.Fix = strings.Join(fixes, "; ")
	return r
}
