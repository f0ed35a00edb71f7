package cli_test

import (
	"regexp"
	"strings"
	"testing"
)

// status --check is a monitoring plugin: one line on stdout, first word
// HEARTBEAT, exit 0/1/2/3, and every error UNKNOWN (3) on stdout too.
func TestStatusCheckPlugin(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.plantFourStates()

		for _, tt := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"--server", "alive"}, 0, `^HEARTBEAT OK - alive ONLINE, last heartbeat \d+s ago \| age=\d+s;;60;0 alerts=0;;;0 failures=0;;;0$`},
			{[]string{"--server", "alerting"}, 1, `^HEARTBEAT WARNING - alerting WARNING, last heartbeat \d+s ago, 1 active alert\(s\) \| age=\d+s;;60;0 alerts=1;;;0`},
			{[]string{"--server", "silent"}, 2, `^HEARTBEAT CRITICAL - silent OFFLINE, no heartbeat yet \| alerts=0;;;0 failures=0;;;0$`},
			{[]string{"--server", "parked"}, 0, `^HEARTBEAT OK - parked DISABLED`},
			{[]string{"--server", "ghost"}, 3, `^HEARTBEAT UNKNOWN - no server named "ghost"$`},
			{[]string{"--bogus"}, 3, `^HEARTBEAT UNKNOWN - unknown flag: --bogus$`},
			{[]string{"--server", "alive", "--json"}, 3, `^HEARTBEAT UNKNOWN - --check prints one plugin line`},
			{[]string{"--timeout", "-1s"}, 3, `^HEARTBEAT UNKNOWN - --timeout must not be negative`},
			{nil, 2, `^HEARTBEAT CRITICAL - 4 servers: 1 online, 1 warning, 1 offline, 1 disabled \(offline: silent\) \| online=1;;;0;4 warning=1;;;0;4 offline=1;0;0;0;4 maintenance=0;;;0;4 disabled=1;;;0;4$`},
			{[]string{"--crit-offline", "1"}, 1, `^HEARTBEAT WARNING - 4 servers`},
		} {
			args := append([]string{"status", "--check"}, tt.args...)
			r := e.run(args...)
			if r.code != tt.code || !regexp.MustCompile(tt.want).MatchString(strings.TrimSuffix(r.out, "\n")) || strings.Count(r.out, "\n") != 1 {
				t.Errorf("heartbeat %s: exit %d, stdout %q (stderr %q)\nwant exit %d, one line matching %s", strings.Join(args, " "), r.code, r.out, r.err, tt.code, tt.want)
			}
		}
		// Without --check the table stays for people, but every error still
		// exits 3 as the plugin convention (and the README) promise.
		for _, args := range [][]string{{"status", "--bogus"}, {"status", "extra"}, {"status", "--timeout", "-1s"}, {"status", "--server", "ghost"}} {
			if r := e.run(args...); r.code != 3 || r.out != "" || !strings.HasPrefix(r.err, "heartbeat: ") {
				t.Errorf("heartbeat %s: exit %d, stdout %q, stderr %q; want 3, nothing, one error line", strings.Join(args, " "), r.code, r.out, r.err)
			}
		}
		// Other commands keep the usage code.
		e.expectFail(64, "unknown flag", "servers", "list", "--bogus")
	})
}

func TestStatusCheckStoreUnreachable(t *testing.T) {
	t.Parallel()
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"DATABASE_URL": "postgres://admin:s3cret@127.0.0.1:1/heartbeat"}}
	r := e.run("status", "--check", "--server", "web1")
	if r.code != 3 || !strings.HasPrefix(r.out, "HEARTBEAT UNKNOWN - ") || strings.Count(r.out, "\n") != 1 || strings.Contains(r.out, "s3cret") {
		t.Errorf("status --check against a stopped store: exit %d, stdout %q", r.code, r.out)
	}
}
