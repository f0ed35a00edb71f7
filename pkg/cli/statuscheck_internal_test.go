package cli

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/status"
)

// The output grammar of the Monitoring Plugins development guidelines
// (https://www.monitoring-plugins.org/doc/guidelines.html, "Plugin Output"
// and "Performance data"): SERVICE STATUS - text | 'label'=value[UOM];[warn];[crit];[min];[max] ...
var (
	pluginLineRE = regexp.MustCompile(`^HEARTBEAT (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+?(?: \| ([^|\n]+))?$`)
	perfDatumRE  = regexp.MustCompile(`^(?:'(?:[^']|'')+'|[^'= ]+)=` + // label, quoted if it holds spaces, = or '
		`(?:-?[0-9.]+|U)(?:s|ms|us|%|B|KB|MB|GB|TB|c)?` + // value and UOM, the class [-0-9.]
		`(?:;(?:@?(?:~|-?[0-9.]+)?:?(?:-?[0-9.]+)?)` + // warn range
		`(?:;(?:@?(?:~|-?[0-9.]+)?:?(?:-?[0-9.]+)?)` + // crit range
		`(?:;(?:-?[0-9.]+)?(?:;(?:-?[0-9.]+)?)?)?)?)?$`) // min, max; trailing fields dropped
)

// checkPluginLine fails t unless line follows the guidelines' grammar.
func checkPluginLine(t *testing.T, line string) {
	t.Helper()
	m := pluginLineRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("not a plugin line: %q", line)
	}
	if m[2] == "" {
		return
	}
	for _, d := range strings.Split(m[2], " ") {
		if !perfDatumRE.MatchString(d) {
			t.Errorf("perfdata %q breaks the guidelines' format (line %q)", d, line)
		}
	}
}

// The grammar itself: it must reject what the guidelines reject, or the
// tests built on it could not fail.
func TestPerfdataGrammar(t *testing.T) {
	for d, ok := range map[string]bool{
		"age=4s;;60;0": true, "latency=0.009s": true, "offline=3;0;0;0;10": true, "'a b'=1": true,
		"x=1;@10:20;~:5": true, "x=U": true, "age=4 s": false, "age=4,5s": false, "x=1;a": false,
		"a b=1": false, "x=": false, "x=1;;;;;": false,
	} {
		if got := perfDatumRE.MatchString(d); got != ok {
			t.Errorf("perfdata %q valid = %v, want %v", d, got, ok)
		}
	}
	for l, ok := range map[string]bool{
		"HEARTBEAT OK - web1 ONLINE | age=1s": true, "HEARTBEAT UNKNOWN - no server": true,
		"ID NAME STATUS": false, "HEARTBEAT OK - a | b | age=1s": false, "HEARTBEAT OK - a\nb": false,
	} {
		if got := pluginLineRE.MatchString(l); got != ok {
			t.Errorf("line %q valid = %v, want %v", l, got, ok)
		}
	}
}

func TestServerCheckLine(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	hb := now.Add(-4 * time.Second)
	old := now.Add(-5 * time.Minute)
	for _, tt := range []struct {
		s    report.ServerStatus
		code int
		want string
	}{
		{report.ServerStatus{Name: "web1", Status: status.Online, LastHeartbeat: &hb, LastProbe: &hb, LatencyMS: 9},
			0, "HEARTBEAT OK - web1 ONLINE, last heartbeat 4s ago | age=4s;;60;0 latency=0.009s;;;0 alerts=0;;;0 failures=0;;;0"},
		{report.ServerStatus{Name: "web2", Status: status.Warning, LastHeartbeat: &hb, ActiveAlerts: 2},
			1, "HEARTBEAT WARNING - web2 WARNING, last heartbeat 4s ago, 2 active alert(s) | age=4s;;60;0 alerts=2;;;0 failures=0;;;0"},
		{report.ServerStatus{Name: "db|1", Status: status.Offline, LastHeartbeat: &old, ConsecutiveFailures: 3, LastErrorClass: "refused", LastError: "connect: connection\nrefused"},
			2, `HEARTBEAT CRITICAL - db/1 OFFLINE, last heartbeat 5m0s ago (stale after 60s), last error refused: connect: connection\nrefused | age=300s;;60;0 alerts=0;;;0 failures=3;;;0`},
		{report.ServerStatus{Name: "new", Status: status.Offline},
			2, "HEARTBEAT CRITICAL - new OFFLINE, no heartbeat yet | alerts=0;;;0 failures=0;;;0"},
		{report.ServerStatus{Name: "parked", Status: status.Disabled},
			0, "HEARTBEAT OK - parked DISABLED (taken out of monitoring), no heartbeat yet | alerts=0;;;0 failures=0;;;0"},
	} {
		tt.s.StaleAfterSeconds = 60
		line, code := serverCheck(report.Report{Now: now, Servers: []report.ServerStatus{tt.s}})
		if line != tt.want || code != tt.code {
			t.Errorf("serverCheck(%s) = %q, %d\nwant %q, %d", tt.s.Name, line, code, tt.want, tt.code)
		}
		checkPluginLine(t, line)
	}
}

func TestFleetCheckLine(t *testing.T) {
	var r report.Report
	for i, st := range []status.State{status.Offline, status.Offline, status.Warning, status.Online, status.Disabled} {
		r.Servers = append(r.Servers, report.ServerStatus{Name: string(rune('a' + i)), Status: st})
		r.Counts.Add(st)
	}
	for _, tt := range []struct {
		warn, crit, code int
	}{{0, 0, 2}, {0, 1, 2}, {0, 2, 1}, {2, 2, 1}} {
		line, code := fleetCheck(r, tt.warn, tt.crit)
		if code != tt.code {
			t.Errorf("fleetCheck(warn %d, crit %d) exit %d, want %d: %q", tt.warn, tt.crit, code, tt.code, line)
		}
		checkPluginLine(t, line)
	}
	line, _ := fleetCheck(r, 1, 2)
	if want := "HEARTBEAT WARNING - 5 servers: 1 online, 1 warning, 2 offline, 1 disabled (offline: a, b) | online=1;;;0;5 warning=1;;;0;5 offline=2;1;2;0;5 maintenance=0;;;0;5 disabled=1;;;0;5"; line != want {
		t.Errorf("fleet line\n got %q\nwant %q", line, want)
	}
	r.Servers, r.Counts = r.Servers[3:4], status.Counts{Online: 1}
	if line, code := fleetCheck(r, 0, 0); code != 0 || !strings.HasPrefix(line, "HEARTBEAT OK - 1 servers") {
		t.Errorf("healthy fleet = %q, %d", line, code)
	}
}
