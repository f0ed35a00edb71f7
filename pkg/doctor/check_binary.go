package doctor

import (
	"fmt"
)

func (d *doctor) checkBinary() Result {
	where := d.cfg.Executable
	if where == "" {
		where = "path unknown"
	}
	return Result{Check: CheckBinary, Status: OK, Message: fmt.Sprintf("heartbeat %s runs (%s)", d.cfg.Version, where)}
}
