package doctor

import (
	"fmt"
)

// checkBinary always passes: that it runs at all is the check; the message
// records which build and which file, for reports.
func (d *doctor) checkBinary() Result {
	where := d.cfg.Executable
	if where == "" {
		where = "path unknown"
	}
	return Result{Check: CheckBinary, Status: OK, Message: fmt.Sprintf("heartbeat %s runs (%s)", d.cfg.Version, where)}
}
