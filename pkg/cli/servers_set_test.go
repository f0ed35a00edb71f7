package cli_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stacksense/heartbeat/pkg/store"
)

// servers set corrects a server in place: the heartbeat, alerts and pinned
// key that remove + add would lose are kept, and the admin is told what
// changed and what the kept pin means.
func TestServersSet(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "web1", "--host", "10.0.0.5", "--user", "monitor")
		s := e.open()
		ctx := context.Background()
		sv, err := s.ServerByName(ctx, "web1")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, OK: true, PinHostKey: []byte("key")}}); err != nil {
			t.Fatal(err)
		}
		e.mustRun("alert", "raise", "web1", "disk full")

		r := e.run("servers", "set", "web1", "--host", "fd00::9", "--port", "2222", "--user", "")
		if r.code != 0 || !strings.Contains(r.out, "updated server web1 (id 1): host 10.0.0.5 → fd00::9, port 22 → 2222, user monitor → (default)") {
			t.Fatalf("servers set: exit %d, out %q, err %q", r.code, r.out, r.err)
		}
		if !strings.Contains(r.err, "keeps its pinned host key") || !strings.Contains(r.err, "[fd00::9]:2222") {
			t.Errorf("no note about the kept pin: %q", r.err)
		}
		show := e.mustRun("servers", "show", "web1")
		if strings.Contains(show, "not pinned") {
			t.Errorf("servers set dropped the pinned host key:\n%s", show)
		}
		for _, want := range []string{"host: fd00::9", "port: 2222", "user: -"} {
			if !strings.Contains(strings.Join(strings.Fields(show), " "), strings.Join(strings.Fields(want), " ")) {
				t.Errorf("servers show lacks %q:\n%s", want, show)
			}
		}
		st, _, err := s.ServerStatus(ctx, sv.ID)
		if err != nil || st.LastHeartbeat == nil || st.ActiveAlerts != 1 {
			t.Errorf("after set: %+v, %v; want the heartbeat and the alert kept", st, err)
		}

		for _, tc := range []struct {
			args []string
			code int
			in   string
		}{
			{[]string{"servers", "set", "web1"}, 64, "nothing to change"},
			{[]string{"servers", "set", "web1", "--port", "0"}, 64, "out of range"},
			{[]string{"servers", "set", "web1", "--host", "bad host"}, 64, "host"},
			{[]string{"servers", "set", "nosuch", "--port", "22"}, 1, `no server named "nosuch"`},
		} {
			r := e.run(tc.args...)
			if r.code != tc.code || !strings.Contains(r.err, tc.in) {
				t.Errorf("%v: exit %d, stderr %q; want %d with %q", tc.args, r.code, r.err, tc.code, tc.in)
			}
		}
		if after, _ := s.ServerByName(ctx, "web1"); after.Host != "fd00::9" || after.Port != 2222 {
			t.Errorf("a refused set changed the server: %+v", after)
		}
	})
}
