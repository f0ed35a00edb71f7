package cli_test

import (
	"context"
	"encoding/json"
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

// servers set --allow-tokenless-from / --no-tokenless switch the migration
// path for the source system's token-less agent on and off; servers show
// and doctor say so, and bad lists are usage errors that change nothing.
func TestServersSetTokenless(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		hostTools{crontab: managedCron}.install(t, e)
		e.mustRun("servers", "add", "web1", "--host", "10.0.0.5")
		e.mustRun("servers", "add", "dns1", "--host", "dns1.example.net")
		showLine := func(name string) string {
			t.Helper()
			for _, line := range strings.Split(e.mustRun("servers", "show", name), "\n") {
				if strings.HasPrefix(line, "token-less pushes:") {
					return strings.Join(strings.Fields(line), " ")
				}
			}
			t.Fatalf("servers show %s has no token-less line", name)
			return ""
		}
		if got := showLine("web1"); got != "token-less pushes: off" {
			t.Errorf("default: %q, want off", got)
		}
		checks, _ := e.doctor()
		expectCheck(t, checks, "tokenless-pushes", "ok", "no server accepts pushes without a token", "")

		r := e.run("servers", "set", "web1", "--allow-tokenless-from", "host")
		if r.code != 0 || !strings.Contains(r.out, "updated server web1 (id 1): token-less pushes off → allowed from 10.0.0.5/32") {
			t.Fatalf("enable from host: exit %d, out %q, err %q", r.code, r.out, r.err)
		}
		if !strings.Contains(r.err, "heartbeat servers token 1") || !strings.Contains(r.err, "heartbeat servers set 1 --no-tokenless") {
			t.Errorf("no note on how to finish the move: %q", r.err)
		}
		if got := showLine("web1"); got != "token-less pushes: allowed from 10.0.0.5/32" {
			t.Errorf("after enabling: %q", got)
		}
		e.mustRun("servers", "set", "dns1", "--allow-tokenless-from", "10.1.0.9/16, 192.0.2.7")
		if got := showLine("dns1"); got != "token-less pushes: allowed from 10.1.0.0/16, 192.0.2.7/32" {
			t.Errorf("explicit list: %q", got)
		}
		checks, _ = e.doctor()
		expectCheck(t, checks, "tokenless-pushes", "warn", "2 server(s) accept pushes without a token", "--no-tokenless")
		var list []struct {
			Name          string   `json:"name"`
			TokenlessFrom []string `json:"tokenless_from"`
		}
		if err := json.Unmarshal([]byte(e.mustRun("servers", "list", "--json")), &list); err != nil || len(list) != 2 ||
			strings.Join(list[0].TokenlessFrom, " ") != "10.1.0.0/16 192.0.2.7/32" || strings.Join(list[1].TokenlessFrom, " ") != "10.0.0.5/32" {
			t.Errorf("servers list --json = %+v, %v", list, err)
		}

		// The list follows a --host given with it ("host" means the new one).
		e.mustRun("servers", "set", "web1", "--host", "10.0.0.6", "--allow-tokenless-from", "host")
		if got := showLine("web1"); got != "token-less pushes: allowed from 10.0.0.6/32" {
			t.Errorf("host changed with the list: %q", got)
		}

		for _, tc := range []struct {
			args []string
			in   string
		}{
			{[]string{"servers", "set", "dns1", "--allow-tokenless-from", "host"}, "is a DNS name"},
			{[]string{"servers", "set", "web1", "--allow-tokenless-from", "10.0.0.0/33"}, "not a CIDR network"},
			{[]string{"servers", "set", "web1", "--allow-tokenless-from", "web1.example.net"}, "not an IP address"},
			{[]string{"servers", "set", "web1", "--allow-tokenless-from", "0.0.0.0/0"}, "every address"},
			{[]string{"servers", "set", "web1", "--allow-tokenless-from", ""}, "is empty"},
			{[]string{"servers", "set", "web1", "--host", "10.0.0.7", "--allow-tokenless-from", "10.0.0.0/99"}, "not a CIDR network"},
			{[]string{"servers", "set", "web1", "--allow-tokenless-from", "10.0.0.5", "--no-tokenless"}, "contradict"},
		} {
			e.expectFail(64, tc.in, tc.args...)
		}
		if got := showLine("web1"); got != "token-less pushes: allowed from 10.0.0.6/32" {
			t.Errorf("a refused set changed the list: %q", got)
		}
		if sv, _ := e.open().ServerByName(context.Background(), "web1"); sv.Host != "10.0.0.6" {
			t.Errorf("a set refused for its list changed the host to %s", sv.Host)
		}

		r = e.run("servers", "set", "web1", "--no-tokenless")
		if r.code != 0 || !strings.Contains(r.out, "token-less pushes allowed from 10.0.0.6/32 → off") || strings.Contains(r.err, "accepts pushes without a token") {
			t.Errorf("switch off: exit %d, out %q, err %q", r.code, r.out, r.err)
		}
		if got := showLine("web1"); got != "token-less pushes: off" {
			t.Errorf("after --no-tokenless: %q", got)
		}
		e.mustRun("servers", "set", "dns1", "--no-tokenless")
		checks, _ = e.doctor()
		expectCheck(t, checks, "tokenless-pushes", "ok", "no server accepts pushes without a token", "")
	})
}
