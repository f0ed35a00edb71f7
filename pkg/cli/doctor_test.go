package cli_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stacksense/heartbeat/pkg/doctor"
	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/sshtest"
)

// doctorCheck is one element of `doctor --json`, the documented schema.
type doctorCheck struct {
	Check   string `json:"check"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix"`
}

// hostTools are stand-ins for the host programs doctor asks about, put on
// the env's PATH so no test depends on (or reads) the real crontab.
type hostTools struct {
	// crontab is what `crontab -l` prints; "" means "no crontab for …".
	crontab string
	// noCrontab leaves the crontab command out altogether.
	noCrontab bool
	// cronDown makes pgrep find no cron daemon.
	cronDown bool
	// timer is what `systemctl is-active` prints; "" leaves systemctl out.
	timer string
}

// managedCron is what setup_heartbeat_cron.sh installs.
const managedCron = "MAILTO=ops@example.net\n" +
	"* * * * * '/usr/local/bin/heartbeat' probe-ssh >>'/home/op/.local/state/heartbeat/probe.log' 2>&1 " + doctor.CronMarker + "\n" +
	"* * * * * sleep 30 && '/usr/local/bin/heartbeat' probe-ssh >>'/home/op/.local/state/heartbeat/probe.log' 2>&1 " + doctor.CronMarker + "\n"

// install writes the stand-ins to a fresh directory and makes it e's PATH.
func (h hostTools) install(t *testing.T, e *env) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if !h.noCrontab {
		tab := filepath.Join(dir, "crontab.txt")
		if err := os.WriteFile(tab, []byte(h.crontab), 0o600); err != nil {
			t.Fatal(err)
		}
		if h.crontab == "" {
			write("crontab", "echo 'no crontab for op' >&2; exit 1\n")
		} else {
			write("crontab", fmt.Sprintf("[ \"$1\" = -l ] || exit 2\nexec cat '%s'\n", tab))
		}
	}
	code := 0
	if h.cronDown {
		code = 1
	}
	write("pgrep", fmt.Sprintf("exit %d\n", code))
	if h.timer != "" {
		write("systemctl", fmt.Sprintf("echo %s; [ %s = active ]\n", h.timer, h.timer))
	}
	e.vars["PATH"] = dir
}

func (e *env) doctor(args ...string) ([]doctorCheck, result) {
	e.t.Helper()
	r := e.run(append([]string{"doctor", "--json"}, args...)...)
	var checks []doctorCheck
	if err := json.Unmarshal([]byte(r.out), &checks); err != nil {
		e.t.Fatalf("doctor --json (exit %d): %v\nstdout: %s\nstderr: %s", r.code, err, r.out, r.err)
	}
	return checks, r
}

func checkNamed(t *testing.T, checks []doctorCheck, name string) doctorCheck {
	t.Helper()
	for _, c := range checks {
		if c.Check == name {
			return c
		}
	}
	t.Fatalf("doctor reported no %q check: %+v", name, checks)
	return doctorCheck{}
}

// expectCheck asserts one check's status and that its message (and fix)
// contain the given fragments.
func expectCheck(t *testing.T, checks []doctorCheck, name, status, inMessage, inFix string) {
	t.Helper()
	c := checkNamed(t, checks, name)
	if c.Status != status || !strings.Contains(c.Message, inMessage) || !strings.Contains(c.Fix, inFix) {
		t.Errorf("%s: %s %q (fix %q); want %s with %q (fix with %q)", name, c.Status, c.Message, c.Fix, status, inMessage, inFix)
	}
}

// healthyDoctor sets up what a working installation has: servers that
// answer, the key they accept, both cron lines, a finished probe run.
func healthyDoctor(t *testing.T, e *env) *sshtest.Fleet {
	t.Helper()
	fleet, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 2})
	e.vars["HEARTBEAT_SSH_KEY"] = key
	hostTools{crontab: managedCron, timer: "inactive"}.install(t, e)
	e.mustRun("probe-ssh")
	return fleet
}

var allChecks = []string{"binary", "store", "ssh-key", "schedule", "last-run", "probe-hosts", "probe-failures", "host-keys", "tokenless-pushes", "clock", "notifications"}

func TestDoctorHealthy(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		healthyDoctor(t, e)

		checks, r := e.doctor()
		if r.code != 0 {
			t.Errorf("doctor on a healthy setup: exit %d\n%s", r.code, r.out)
		}
		var names []string
		for _, c := range checks {
			names = append(names, c.Check)
			if c.Status != "ok" {
				t.Errorf("healthy setup: %s is %s: %s (fix %s)", c.Check, c.Status, c.Message, c.Fix)
			}
		}
		if strings.Join(names, ",") != strings.Join(allChecks, ",") {
			t.Errorf("checks = %v, want %v", names, allChecks)
		}
		expectCheck(t, checks, "schedule", "ok", "2 probe-ssh cron lines installed by setup_heartbeat_cron.sh", "")
		expectCheck(t, checks, "last-run", "ok", "2/2 answered", "")
		expectCheck(t, checks, "probe-failures", "ok", "no failures: the last probe of all 2 enabled servers succeeded", "")
		if e.vars["DATABASE_URL"] != "" {
			expectCheck(t, checks, "probe-hosts", "ok", "1 probe host(s) share the fleet: ", "")
		} else {
			expectCheck(t, checks, "probe-hosts", "ok", "SQLite store: one probe host at a time", "")
		}
		// A server added since the last run has not succeeded yet.
		e.mustRun("servers", "add", "newcomer", "--host", "127.0.0.1")
		checks, _ = e.doctor()
		expectCheck(t, checks, "probe-failures", "ok", "no failures: the last probe of 2 enabled servers succeeded; 1 not probed yet", "")
		e.mustRun("servers", "remove", "newcomer", "--yes")
		checks, _ = e.doctor()
		expectCheck(t, checks, "ssh-key", "ok", "key file "+e.vars["HEARTBEAT_SSH_KEY"], "")
		// Every element carries all four documented keys, fix included.
		var raw []map[string]any
		json.Unmarshal([]byte(r.out), &raw)
		for _, k := range []string{"check", "status", "message", "fix"} {
			if _, ok := raw[0][k]; !ok || len(raw[0]) != 4 {
				t.Errorf("doctor --json element %v: want exactly check, status, message, fix", raw[0])
			}
		}

		text := e.run("doctor")
		if text.code != 0 || !strings.Contains(text.out, "ok    store ") || !strings.HasPrefix(lastLine(text.out), fmt.Sprintf("healthy: %d ok, 0 warning(s), 0 failed", len(allChecks))) {
			t.Errorf("doctor text (exit %d):\n%s", text.code, text.out)
		}

		quick, r := e.doctor("--quick")
		if r.code != 0 || len(quick) != 3 || quick[0].Check != "binary" || quick[1].Check != "store" || quick[2].Check != "ssh-key" {
			t.Errorf("doctor --quick (exit %d) = %+v, want binary, store, ssh-key", r.code, quick)
		}
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestDoctorStoreProblems(t *testing.T) {
	t.Run("malformed", func(t *testing.T) {
		t.Parallel()
		e := &env{t: t, home: t.TempDir(), vars: map[string]string{"HEARTBEAT_DB": "mysql://u:topsecret@h/db"}}
		hostTools{crontab: managedCron}.install(t, e)
		checks, r := e.doctor()
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		expectCheck(t, checks, "store", "fail", "malformed store URL", "--db, HEARTBEAT_DB")
		for _, name := range []string{"last-run", "probe-hosts", "probe-failures", "host-keys", "tokenless-pushes", "clock"} {
			expectCheck(t, checks, name, "skip", "the store is not usable", "")
		}
		if strings.Contains(r.out, "topsecret") {
			t.Errorf("doctor printed the password:\n%s", r.out)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		e := &env{t: t, home: t.TempDir(), vars: map[string]string{
			"DATABASE_URL": fmt.Sprintf("postgres://hb:topsecret@127.0.0.1:%d/heartbeat", closedPort(t)),
		}}
		r := e.run("doctor", "--quick", "--connect-timeout", "2s")
		if r.code != 1 || !strings.Contains(r.out, "FAIL  store") || !strings.Contains(r.out, "cannot reach postgres store postgres://hb:xxxxx@127.0.0.1") ||
			!strings.Contains(r.out, "chosen by DATABASE_URL") {
			t.Errorf("doctor --quick with the store down (exit %d):\n%s", r.code, r.out)
		}
		if strings.Contains(r.out+r.err, "topsecret") {
			t.Errorf("doctor printed the password:\n%s%s", r.out, r.err)
		}
	})
	t.Run("schema behind", func(t *testing.T) {
		t.Parallel()
		e := &env{t: t, home: t.TempDir(), vars: map[string]string{"DATABASE_URL": pgtest.URL(t)}}
		checks, r := e.doctor("--quick")
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		expectCheck(t, checks, "store", "fail", "migration(s) pending", "run `heartbeat migrate`")
		e.mustRun("migrate")
		checks, _ = e.doctor("--quick")
		expectCheck(t, checks, "store", "ok", "reachable, schema current (chosen by DATABASE_URL)", "")
	})
}

func TestDoctorKeyProblems(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		healthyDoctor(t, e)
		good := e.vars["HEARTBEAT_SSH_KEY"]

		e.vars["HEARTBEAT_SSH_KEY"] = filepath.Join(t.TempDir(), "missing")
		checks, r := e.doctor("--quick")
		if r.code != 1 {
			t.Errorf("missing key: exit %d, want 1", r.code)
		}
		expectCheck(t, checks, "ssh-key", "fail", "file does not exist", "chmod 600")
		expectCheck(t, checks, "ssh-key", "fail", "(key set by HEARTBEAT_SSH_KEY)", "")

		open := filepath.Join(t.TempDir(), "id_ed25519")
		pem, _ := os.ReadFile(good)
		os.WriteFile(open, pem, 0o644)
		os.Chmod(open, 0o644)
		e.vars["HEARTBEAT_SSH_KEY"] = open
		checks, r = e.doctor()
		if r.code != 1 {
			t.Errorf("key readable by others: exit %d, want 1", r.code)
		}
		expectCheck(t, checks, "ssh-key", "fail", "permissions 0644 are too open", "")

		// --key wins over the environment, as for probe-ssh.
		checks, r = e.doctor("--key", good)
		if r.code != 0 {
			t.Errorf("doctor --key GOOD: exit %d: %+v", r.code, checks)
		}

		// A bad per-server key fails even when the default is fine.
		e.vars["HEARTBEAT_SSH_KEY"] = good
		e.mustRun("servers", "add", "own-key", "--host", "127.0.0.1", "--port", "1", "--key", open)
		checks, r = e.doctor("--quick")
		if r.code != 1 {
			t.Errorf("bad per-server key: exit %d, want 1", r.code)
		}
		expectCheck(t, checks, "ssh-key", "fail", "per-server keys: private key "+open, "")
	})
}

func TestDoctorSchedule(t *testing.T) {
	oneLine := "* * * * * /usr/bin/heartbeat probe-ssh\n"
	handMade := "* * * * * /usr/bin/heartbeat probe-ssh > /dev/null 2>&1\n* * * * * sleep 30 && /usr/bin/heartbeat probe-ssh > /dev/null 2>&1\n"
	tests := []struct {
		name      string
		tools     hostTools
		status    string
		inMessage string
		inFix     string
	}{
		{"no lines", hostTools{crontab: "MAILTO=x\n# * * * * * heartbeat probe-ssh\n", timer: "inactive"}, "fail", "no probe-ssh line in this user's crontab and heartbeat-probe.timer is not active", "setup_heartbeat_cron.sh"},
		{"no crontab at all", hostTools{timer: "inactive"}, "fail", "no probe-ssh line", "setup_heartbeat_cron.sh"},
		{"one line", hostTools{crontab: oneLine}, "warn", "only one probe-ssh cron line", "both staggered lines"},
		{"hand-made to /dev/null", hostTools{crontab: handMade}, "warn", "output goes to /dev/null", "log file"},
		{"cron daemon down", hostTools{crontab: managedCron, cronDown: true}, "fail", "no cron daemon is running", "Debian package cron"},
		{"no crontab command, no systemd", hostTools{noCrontab: true}, "fail", "no crontab command and there is no systemd", "Debian package cron"},
		{"systemd timer", hostTools{noCrontab: true, timer: "active"}, "ok", "heartbeat-probe.timer is active", ""},
		{"timer and cron", hostTools{crontab: managedCron, timer: "active"}, "warn", "active too", "--remove"},
	}
	eachStore(t, func(t *testing.T, e *env) {
		healthyDoctor(t, e)
		for _, tt := range tests {
			tt.tools.install(t, e)
			checks, r := e.doctor()
			wantCode := 0
			if tt.status == "fail" {
				wantCode = 1
			}
			if r.code != wantCode {
				t.Errorf("%s: exit %d, want %d", tt.name, r.code, wantCode)
			}
			c := checkNamed(t, checks, "schedule")
			if c.Status != tt.status || !strings.Contains(c.Message, tt.inMessage) || !strings.Contains(c.Fix, tt.inFix) {
				t.Errorf("%s: schedule %s %q (fix %q); want %s with %q (fix with %q)", tt.name, c.Status, c.Message, c.Fix, tt.status, tt.inMessage, tt.inFix)
			}
		}
	})
}

func TestDoctorProbeOutcomes(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		fleet, key := fleetEnv(t, e,
			sshtest.Group{Mode: sshtest.ModeOK, Count: 1},
			sshtest.Group{Mode: sshtest.ModeAuthReject, Count: 2},
		)
		e.vars["HEARTBEAT_SSH_KEY"] = key
		hostTools{crontab: managedCron}.install(t, e)
		for i := 0; i < 4; i++ {
			e.mustRun("servers", "add", "closed"+strconv.Itoa(i), "--host", "127.0.0.1", "--port", strconv.Itoa(closedPort(t)))
		}

		checks, r := e.doctor()
		if r.code != 1 {
			t.Errorf("before any probe run: exit %d, want 1", r.code)
		}
		expectCheck(t, checks, "last-run", "fail", "no probe-ssh run has finished", "setup_heartbeat_cron.sh")
		// Never probed is neither a success nor a failure.
		expectCheck(t, checks, "probe-failures", "ok", "no failures: none of the 7 enabled servers has been probed yet", "")

		e.mustRun("probe-ssh", "--all", "--timeout", "2s")
		checks, r = e.doctor()
		if r.code != 0 {
			t.Errorf("servers failing is data, not a broken setup: exit %d\n%s", r.code, r.out)
		}
		expectCheck(t, checks, "last-run", "ok", "1/7 answered", "")
		expectCheck(t, checks, "probe-failures", "warn", "6 of 7 enabled servers failed their last probe: refused 4 [closed0 (127.0.0.1:", "refused: start sshd")
		expectCheck(t, checks, "probe-failures", "warn", "; and 1 more], auth 2 [", "auth: deploy the monitoring public key")
		expectCheck(t, checks, "host-keys", "ok", "no server presented a changed host key", "")

		// A changed host key.
		name := fleet.Server(0).Name
		if _, err := fleet.RotateHostKey(0); err != nil {
			t.Fatal(err)
		}
		e.mustRun("probe-ssh", "--all", "--timeout", "2s")
		checks, r = e.doctor()
		if r.code != 0 {
			t.Errorf("a changed host key warns, it does not fail: exit %d", r.code)
		}
		expectCheck(t, checks, "host-keys", "warn", "differs from the pinned one and get no heartbeat until an admin decides: "+name, "heartbeat servers trust "+name)
		expectCheck(t, checks, "probe-failures", "warn", "hostkey-mismatch 1", "")

		// Nearly everything failing to connect points at this host.
		for _, s := range fleet.Servers() {
			e.mustRun("servers", "disable", s.Name)
		}
		e.mustRun("probe-ssh", "--all", "--timeout", "2s")
		checks, r = e.doctor()
		if r.code != 1 {
			t.Errorf("every server refused: exit %d, want 1", r.code)
		}
		expectCheck(t, checks, "probe-failures", "fail", "monitoring host itself is probably cut off", "this host's network")

		// Nothing registered at all is a warning.
		for i := 0; i < 4; i++ {
			e.mustRun("servers", "remove", "closed"+strconv.Itoa(i), "--yes")
		}
		checks, _ = e.doctor()
		expectCheck(t, checks, "probe-failures", "warn", "no enabled servers", "heartbeat servers import")
	})
}

// TestDoctorNeverPrintsPasswords runs the whole report against a store URL
// with a password in it.
func TestDoctorNeverPrintsPasswords(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "topsecret")
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"DATABASE_URL": u.String()}}
	e.mustRun("migrate")
	hostTools{crontab: managedCron}.install(t, e)
	for _, args := range [][]string{{"doctor"}, {"doctor", "--json"}} {
		r := e.run(args...)
		if strings.Contains(r.out+r.err, "topsecret") {
			t.Errorf("%v printed the password:\n%s%s", args, r.out, r.err)
		}
		if !strings.Contains(r.out, "xxxxx") {
			t.Errorf("%v does not name the store (redacted):\n%s", args, r.out)
		}
	}
}
