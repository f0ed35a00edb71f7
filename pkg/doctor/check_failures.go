package doctor

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/stacksense/heartbeat/pkg/failure"
	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

// examplesPerClass is how many failing servers each class names.
const examplesPerClass = 3

// checkFailures counts the enabled servers whose last probe failed, by
// class, naming a few of each.
func (d *doctor) checkFailures(ctx context.Context, s store.Store) Result {
	r := Result{Check: CheckFailures}
	snap, err := call(ctx, d.cfg.CallTimeout, s.Status)
	if err != nil {
		return readFailed(CheckFailures, "read server status", err)
	}
	byClass := map[string][]store.ServerStatus{}
	enabled, failed, connectFailed, unprobed := 0, 0, 0, 0
	for _, st := range snap.Servers {
		if !st.Enabled || st.Mode == store.ModePush {
			continue
		}
		enabled++
		if st.LastProbe == nil {
			// Never probed: neither a success nor a failure yet.
			unprobed++
			continue
		}
		if st.LastErrorClass == "" {
			continue
		}
		failed++
		if failure.Class(st.LastErrorClass).Connect() {
			connectFailed++
		}
		byClass[st.LastErrorClass] = append(byClass[st.LastErrorClass], st)
	}
	if enabled == 0 {
		r.Status, r.Message = Warn, "no enabled servers are registered"
		r.Fix = "register servers: heartbeat servers add NAME --host HOST, or heartbeat servers import fleet.csv"
		return r
	}
	notYet := ""
	if unprobed > 0 {
		notYet = fmt.Sprintf("; %d not probed yet", unprobed)
	}
	switch {
	case failed == 0 && unprobed == enabled:
		r.Status, r.Message = OK, fmt.Sprintf("no failures: none of the %d enabled servers has been probed yet", enabled)
		return r
	case failed == 0 && unprobed == 0:
		r.Status, r.Message = OK, fmt.Sprintf("no failures: the last probe of all %d enabled servers succeeded", enabled)
		return r
	case failed == 0:
		r.Status, r.Message = OK, fmt.Sprintf("no failures: the last probe of %d enabled servers succeeded%s", enabled-unprobed, notYet)
		return r
	}
	classes := make([]string, 0, len(byClass))
	for c := range byClass {
		classes = append(classes, c)
	}
	sort.Slice(classes, func(i, j int) bool {
		if len(byClass[classes[i]]) != len(byClass[classes[j]]) {
			return len(byClass[classes[i]]) > len(byClass[classes[j]])
		}
		return classes[i] < classes[j]
	})
	parts := make([]string, 0, len(classes))
	fixes := make([]string, 0, len(classes))
	for _, c := range classes {
		list := byClass[c]
		examples := make([]string, 0, examplesPerClass)
		for i, st := range list {
			if i == examplesPerClass {
				examples = append(examples, fmt.Sprintf("and %d more", len(list)-examplesPerClass))
				break
			}
			examples = append(examples, fmt.Sprintf("%s (%s:%d): %s", output.Escape(st.Name), output.Escape(st.Host), st.Port, output.Escape(st.LastError)))
		}
		parts = append(parts, fmt.Sprintf("%s %d [%s]", c, len(list), strings.Join(examples, "; ")))
		fixes = append(fixes, c+": "+failure.Class(c).Advice())
	}
	r.Status = Warn
	r.Message = fmt.Sprintf("%d of %d enabled servers failed their last probe: %s%s", failed, enabled, strings.Join(parts, ", "), notYet)
	r.Fix = strings.Join(fixes, "; ")
	// The same rule as `status --verbose`: nearly all failing to connect
	// at once points at this host, not the servers.
	if status.HostCutOff(connectFailed, enabled) {
		r.Status = Fail
		r.Message += "; nearly every server failed to connect, so the monitoring host itself is probably cut off"
		r.Fix = "check this host's network, DNS and outbound firewall before the servers; " + r.Fix
	}
	return r
}
