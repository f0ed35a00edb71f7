package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/stacksense/heartbeat/pkg/sshtest"
	"github.com/stacksense/heartbeat/pkg/sshtest/openssh"
	"github.com/stacksense/heartbeat/pkg/store"
)

// fleetEnv starts an in-process SSH fleet, registers it in e's store and
// returns the fleet and the path of the client key the fleet accepts.
func fleetEnv(t *testing.T, e *env, groups ...sshtest.Group) (*sshtest.Fleet, string) {
	t.Helper()
	key, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(t.TempDir(), "id_ed25519")
	if err := key.WriteFile(keyPath, nil); err != nil {
		t.Fatal(err)
	}
	fleet, err := sshtest.Start(context.Background(), sshtest.Config{Groups: groups, AuthorizedKeys: []ssh.PublicKey{key.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet.Close() })
	var csv bytes.Buffer
	if err := fleet.CSV(&csv); err != nil {
		t.Fatal(err)
	}
	e.stdin = csv.String()
	e.mustRun("servers", "import", "-")
	e.stdin = ""
	return fleet, keyPath
}

type probeRun struct {
	RunID         int64          `json:"run_id"`
	Servers       int            `json:"servers"`
	Probed        int            `json:"probed"`
	Succeeded     int            `json:"succeeded"`
	FailedByClass map[string]int `json:"failed_by_class"`
	DeadlineHit   bool           `json:"deadline_hit"`
	Results       []struct {
		Name  string `json:"name"`
		OK    bool   `json:"ok"`
		Class string `json:"error_class"`
		Error string `json:"error"`
	} `json:"results"`
}

func (e *env) probe(args ...string) probeRun {
	e.t.Helper()
	// --all: each call probes every server, however soon after the last
	// (on Postgres a run otherwise probes only what is due this tick).
	out := e.mustRun(append([]string{"probe-ssh", "--json", "--all"}, args...)...)
	var r probeRun
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("probe-ssh --json: %v\n%s", err, out)
	}
	return r
}

func (r probeRun) classOf(name string) string {
	for _, res := range r.Results {
		if res.Name == name {
			if res.OK {
				return "ok"
			}
			return res.Class
		}
	}
	return "missing"
}

// closedPort is a loopback port that refuses connections for the test.
func closedPort(t *testing.T) int { return sshtest.ClosedPort(t) }

func TestProbeSSHRecordsEveryOutcome(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		fleet, key := fleetEnv(t, e,
			sshtest.Group{Mode: sshtest.ModeOK, Count: 2},
			sshtest.Group{Mode: sshtest.ModeAuthReject, Count: 1},
			sshtest.Group{Mode: sshtest.ModeTarpit, Count: 1},
			sshtest.Group{Mode: sshtest.ModeNotSSH, Count: 1},
			sshtest.Group{Mode: sshtest.ModeDrop, Count: 1},
		)
		e.mustRun("servers", "add", "closed", "--host", "127.0.0.1", "--port", strconv.Itoa(closedPort(t)))
		e.mustRun("servers", "add", "nowhere", "--host", "no-such-host.invalid")
		e.mustRun("servers", "add", "parked", "--host", "127.0.0.1", "--port", "1")
		e.mustRun("servers", "disable", "parked")

		run := e.probe("--key", key, "--timeout", "3s", "--deadline", "15s")
		if run.Servers != 8 || run.Probed != 8 || run.Succeeded != 2 || run.DeadlineHit {
			t.Errorf("run = %+v, want 8 probed (disabled skipped), 2 answered, deadline not hit", run)
		}
		want := map[string]string{"closed": "refused", "nowhere": "dns"}
		for _, s := range fleet.Servers() {
			want[s.Name] = map[sshtest.Mode]string{
				sshtest.ModeOK: "ok", sshtest.ModeAuthReject: "auth", sshtest.ModeTarpit: "timeout",
				sshtest.ModeNotSSH: "banner", sshtest.ModeDrop: "handshake",
			}[s.Mode]
		}
		for name, class := range want {
			if got := run.classOf(name); got != class {
				t.Errorf("%s: probe outcome %s, want %s", name, got, class)
			}
		}

		r := e.run("status", "--json")
		var rows []statusJSON
		json.Unmarshal([]byte(r.out), &rows)
		for _, row := range rows {
			switch {
			case row.Name == "parked":
				if row.Status != "DISABLED" {
					t.Errorf("parked is %s", row.Status)
				}
			case want[row.Name] == "ok":
				if row.Status != "ONLINE" || row.Source != "ssh" || row.ConsecutiveFailures != 0 {
					t.Errorf("%s after a good probe: %+v", row.Name, row)
				}
			default:
				if row.Status != "OFFLINE" || row.ConsecutiveFailures != 1 {
					t.Errorf("%s after a failed probe: %+v", row.Name, row)
				}
			}
		}
		verbose := e.run("status", "--verbose").out
		for _, w := range []string{"last probe run", "2/8 answered", "refused: ", "timeout: ", "banner: ", "auth: "} {
			if !strings.Contains(verbose, w) {
				t.Errorf("status --verbose lacks %q:\n%s", w, verbose)
			}
		}

		// Quiet by default: cron mails whatever a job prints.
		if r := e.run("probe-ssh", "--all", "--key", key, "--timeout", "3s"); r.code != 0 || r.out != "" || r.err != "" {
			t.Errorf("plain probe-ssh printed %q / %q (exit %d); want silence and 0", r.out, r.err, r.code)
		}
		if r := e.run("probe-ssh", "--all", "--key", key, "--timeout", "3s", "--summary"); !strings.HasPrefix(r.out, "probed 8 servers in ") ||
			!strings.Contains(r.out, "2 answered, 6 failed (") || strings.Count(r.out, "\n") != 1 {
			t.Errorf("--summary printed %q", r.out)
		}
		// A third consecutive failure is counted.
		var again []statusJSON
		json.Unmarshal([]byte(e.run("status", "--json", "--server", "closed").out), &again)
		if len(again) != 1 || again[0].ConsecutiveFailures != 3 {
			t.Errorf("closed after three failed runs: %+v", again)
		}
	})
}

func TestProbeSSHPinsAndDetectsChangedHostKey(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		fleet, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 1})
		name := fleet.Server(0).Name
		original := ssh.FingerprintSHA256(fleet.Server(0).HostKey())

		if run := e.probe("--key", key); run.classOf(name) != "ok" {
			t.Fatalf("first probe: %+v", run)
		}
		if show := e.mustRun("servers", "show", name); !strings.Contains(show, original) {
			t.Errorf("first probe did not pin the host key %s:\n%s", original, show)
		}
		var before []statusJSON
		json.Unmarshal([]byte(e.run("status", "--json").out), &before)

		rotated, err := fleet.RotateHostKey(0)
		if err != nil {
			t.Fatal(err)
		}
		if run := e.probe("--key", key); run.classOf(name) != "hostkey-mismatch" {
			t.Fatalf("probe after key change: %s, want hostkey-mismatch", run.classOf(name))
		}
		var after []statusJSON
		json.Unmarshal([]byte(e.run("status", "--json").out), &after)
		if after[0].LastHeartbeat == nil || !after[0].LastHeartbeat.Equal(*before[0].LastHeartbeat) {
			t.Errorf("a mismatching host key recorded a heartbeat: %v then %v", before[0].LastHeartbeat, after[0].LastHeartbeat)
		}
		verbose := e.run("status", "--verbose").out
		if !strings.Contains(verbose, "hostkey-mismatch") {
			t.Errorf("status --verbose does not show the mismatch:\n%s", verbose)
		}
		// It stays a mismatch on every run until an admin decides.
		if run := e.probe("--key", key); run.classOf(name) != "hostkey-mismatch" {
			t.Errorf("second probe after key change: %s", run.classOf(name))
		}

		newFP := ssh.FingerprintSHA256(rotated)
		e.expectFail(64, "matches neither", "servers", "trust", name, "--fingerprint", "SHA256:bogus")
		out := e.mustRun("servers", "trust", name, "--fingerprint", newFP)
		if !strings.Contains(out, original) || !strings.Contains(out, newFP) || !strings.Contains(out, "pinned "+newFP) {
			t.Errorf("servers trust printed:\n%s", out)
		}
		if run := e.probe("--key", key); run.classOf(name) != "ok" {
			t.Errorf("probe after trust: %s", run.classOf(name))
		}

		// Without --fingerprint the pin is cleared and the next probe
		// pins what it sees.
		if _, err := fleet.RotateHostKey(0); err != nil {
			t.Fatal(err)
		}
		e.probe("--key", key)
		if out := e.mustRun("servers", "trust", name); !strings.Contains(out, "cleared the pin") {
			t.Errorf("servers trust printed:\n%s", out)
		}
		if run := e.probe("--key", key); run.classOf(name) != "ok" {
			t.Errorf("probe after clearing the pin: %s", run.classOf(name))
		}
		if show := e.mustRun("servers", "show", name); !strings.Contains(show, ssh.FingerprintSHA256(fleet.Server(0).HostKey())) {
			t.Errorf("re-pinned key not shown:\n%s", show)
		}
	})
}

func TestProbeSSHOneRunAtATime(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		_, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 1})
		s := e.open()
		// On Postgres hosts share the fleet and only runs of the same
		// host exclude each other; on SQLite one run per store.
		e.vars["HEARTBEAT_PROBE_HOST"] = "probe-one"
		take := s.TryProbeLock
		if leaser, ok := s.(store.ProbeLeaser); ok {
			take = func(ctx context.Context) (store.ProbeLock, bool, error) {
				return leaser.TryHostProbeLock(ctx, "probe-one")
			}
		}
		lock, ok, err := take(context.Background())
		if err != nil || !ok {
			t.Fatalf("take lock: %v %v", ok, err)
		}
		r := e.run("probe-ssh", "--key", key, "--summary")
		if r.code != 0 || r.out != "" || !strings.Contains(r.err, "another probe-ssh run is in progress") {
			t.Errorf("probe while locked: exit %d, out %q, err %q; want 0, a one-line notice, no run", r.code, r.out, r.err)
		}
		if last, _ := s.LastFinishedRun(context.Background()); last != nil {
			t.Errorf("a locked-out probe recorded a run: %+v", last)
		}
		lock.Release(context.Background())
		if r := e.run("probe-ssh", "--key", key, "--summary"); r.code != 0 || !strings.Contains(r.out, "1 answered") {
			t.Errorf("probe after release: exit %d, out %q, err %q", r.code, r.out, r.err)
		}
	})
}

func TestProbeSSHRefusesBadCredentialsBeforeContactingServers(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		_, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 1})
		loose := filepath.Join(t.TempDir(), "loose_key")
		data, _ := os.ReadFile(key)
		os.WriteFile(loose, data, 0o644)
		locked := filepath.Join(t.TempDir(), "locked_key")
		k, _ := sshtest.NewClientKey()
		k.WriteFile(locked, []byte("passphrase"))

		cases := []struct{ key, want string }{
			{loose, "loose_key"},
			{filepath.Join(t.TempDir(), "missing"), "missing"},
			{locked, "locked_key"},
		}
		for _, c := range cases {
			r := e.run("probe-ssh", "--key", c.key)
			if r.code != 1 || !strings.Contains(r.err, c.want) || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
				t.Errorf("probe-ssh --key %s: exit %d, stderr %q; want 1 and one line naming the file", c.key, r.code, r.err)
			}
		}
		e.vars["SSH_PRIVATE_KEY_PATH"] = loose
		if r := e.run("probe-ssh"); r.code != 1 || !strings.Contains(r.err, "SSH_PRIVATE_KEY_PATH") {
			t.Errorf("bad SSH_PRIVATE_KEY_PATH: exit %d, stderr %q; want 1 naming the variable", r.code, r.err)
		}
		delete(e.vars, "SSH_PRIVATE_KEY_PATH")
		var rows []statusJSON
		json.Unmarshal([]byte(e.run("status", "--json").out), &rows)
		if rows[0].ConsecutiveFailures != 0 || rows[0].LastHeartbeat != nil {
			t.Errorf("a refused run touched the server: %+v", rows[0])
		}
		s := e.open()
		if last, _ := s.LastFinishedRun(context.Background()); last != nil {
			t.Errorf("a refused run was recorded: %+v", last)
		}
		for _, args := range [][]string{
			{"--concurrency", "0"}, {"--timeout", "0s"}, {"--deadline", "-1s"},
			{"--host-key-policy", "trusting"}, {"--json", "--summary"},
		} {
			if r := e.run(append([]string{"probe-ssh", "--key", key}, args...)...); r.code != 64 {
				t.Errorf("probe-ssh %v: exit %d, want 64 (stderr %q)", args, r.code, r.err)
			}
		}
	})
}

func TestProbeSSHKnownHostsPolicy(t *testing.T) {
	t.Parallel()
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"HEARTBEAT_DB": filepath.Join(t.TempDir(), "hb.db")}}
	fleet, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 2})
	known := filepath.Join(t.TempDir(), "known_hosts")
	s0 := fleet.Server(0)
	line := fmt.Sprintf("[%s]:%d %s", s0.Host, s0.Port, ssh.MarshalAuthorizedKey(s0.HostKey()))
	os.WriteFile(known, []byte(line), 0o600)
	run := e.probe("--key", key, "--host-key-policy", "known-hosts", "--known-hosts", known)
	if run.classOf(s0.Name) != "ok" || run.classOf(fleet.Server(1).Name) != "hostkey-unknown" {
		t.Errorf("known-hosts run: %+v", run.Results)
	}
	// known-hosts never pins: known_hosts is the truth.
	if show := e.mustRun("servers", "show", s0.Name); !strings.Contains(show, "not pinned yet") {
		t.Errorf("known-hosts policy pinned a key:\n%s", show)
	}
	r := e.run("probe-ssh", "--key", key, "--host-key-policy", "insecure")
	if r.code != 0 || !strings.Contains(r.err, "NOT verified") {
		t.Errorf("insecure run: exit %d, stderr %q; want 0 and a warning", r.code, r.err)
	}
}

// TestOpenSSHEndToEnd is the whole product against a real OpenSSH sshd:
// register, probe, read status.
func TestOpenSSHEndToEnd(t *testing.T) {
	openssh.Require(t)
	eachStore(t, func(t *testing.T, e *env) {
		key, err := sshtest.NewClientKey()
		if err != nil {
			t.Fatal(err)
		}
		keyPath := filepath.Join(t.TempDir(), "id_ed25519")
		if err := key.WriteFile(keyPath, nil); err != nil {
			t.Fatal(err)
		}
		d := openssh.Start(t, key.AuthorizedKey())
		me, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		e.mustRun("servers", "add", "real", "--host", "127.0.0.1", "--port", strconv.Itoa(d.Port), "--user", me.Username)

		if run := e.probe("--key", keyPath, "--exec", "true"); run.classOf("real") != "ok" {
			t.Fatalf("probe real sshd: %+v\nsshd log:\n%s", run.Results, d.Log())
		}
		if r := e.run("status", "--server", "real"); r.code != 0 || !strings.Contains(r.out, "ONLINE") {
			t.Errorf("status after probing real sshd: exit %d\n%s", r.code, r.out)
		}
		var before []statusJSON
		json.Unmarshal([]byte(e.run("status", "--json").out), &before)

		wrong := filepath.Join(t.TempDir(), "wrong")
		other, _ := sshtest.NewClientKey()
		other.WriteFile(wrong, nil)
		if run := e.probe("--key", wrong); run.classOf("real") != "auth" {
			t.Errorf("wrong user key: %s, want auth", run.classOf("real"))
		}

		d.RegenerateHostKey(t)
		if run := e.probe("--key", keyPath); run.classOf("real") != "hostkey-mismatch" {
			t.Errorf("regenerated host key: %s, want hostkey-mismatch", run.classOf("real"))
		}
		var after []statusJSON
		json.Unmarshal([]byte(e.run("status", "--json").out), &after)
		if after[0].LastHeartbeat == nil || !after[0].LastHeartbeat.Equal(*before[0].LastHeartbeat) {
			t.Errorf("heartbeat moved after a host-key mismatch: %v then %v", before[0].LastHeartbeat, after[0].LastHeartbeat)
		}
	})
}

func TestProbeSSHSkipsPushServers(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		fleet, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 1})
		e.mustRun("servers", "add", "agent1", "--host", "127.0.0.1", "--port", strconv.Itoa(closedPort(t)), "--mode", "push")
		e.mustRun("servers", "add", "agent2", "--host", "127.0.0.1", "--port", strconv.Itoa(closedPort(t)))
		e.expectFail(64, `mode "pigeon" is not ssh or push`, "servers", "mode", "agent2", "pigeon")
		if out := e.mustRun("servers", "mode", "agent2", "push"); !strings.Contains(out, "now in mode push") {
			t.Errorf("servers mode printed %q", out)
		}
		run := e.probe("--key", key)
		if run.Servers != 1 || run.classOf(fleet.Server(0).Name) != "ok" || run.classOf("agent1") != "missing" || run.classOf("agent2") != "missing" {
			t.Errorf("probe-ssh with push servers: %+v", run)
		}
		var rows []statusJSON
		json.Unmarshal([]byte(e.run("status", "--json").out), &rows)
		for _, r := range rows {
			if strings.HasPrefix(r.Name, "agent") && (r.ConsecutiveFailures != 0 || r.Status != "OFFLINE") {
				t.Errorf("push server %s after a probe run: %+v", r.Name, r)
			}
		}
		if out := e.run("status", "--json").out; !strings.Contains(out, `"mode": "push"`) {
			t.Errorf("status --json lacks the mode:\n%s", out)
		}
		if list := e.mustRun("servers", "list"); !regexp.MustCompile(`(?m)agent1\s.*\spush\s+yes$`).MatchString(list) {
			t.Errorf("servers list lacks the mode:\n%s", list)
		}
	})
}

// A typo in one server's --key fails that server alone, with class key
// and a message naming the path and the reason; the rest of the fleet is
// probed and the summary counts it. servers add warns about the key.
func TestProbeSSHBadPerServerKeyFailsThatServerOnly(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		_, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 2})
		missing := filepath.Join(t.TempDir(), "nonexistent")
		r := e.run("servers", "add", "typo", "--host", "127.0.0.1", "--port", "1", "--key", missing)
		if r.code != 0 || !strings.Contains(r.err, "warning: server typo: key "+missing+" is not readable") {
			t.Errorf("servers add --key MISSING: exit %d, stderr %q; want 0 and a warning naming server and key", r.code, r.err)
		}
		if r := e.run("servers", "add", "good", "--host", "127.0.0.1", "--port", "1", "--key", key); r.err != "" {
			t.Errorf("servers add with a readable key warned: %q", r.err)
		}
		e.mustRun("servers", "remove", "good", "--yes")

		run := e.probe("--key", key)
		if run.Probed != 3 || run.Succeeded != 2 || run.FailedByClass["key"] != 1 || run.classOf("typo") != "key" {
			t.Fatalf("run with one bad per-server key: %+v", run)
		}
		for _, res := range run.Results {
			if res.Name == "typo" && (!strings.Contains(res.Error, missing) || !strings.Contains(res.Error, "does not exist")) {
				t.Errorf("typo's message should name the path and the reason: %q", res.Error)
			}
		}
		if out := e.mustRun("probe-ssh", "--summary", "--key", key); !strings.Contains(out, "1 failed (key 1)") {
			t.Errorf("summary: %q", out)
		}
		// The default credential is still checked before anyone is
		// contacted.
		if r := e.run("probe-ssh", "--key", missing); r.code != 1 || !strings.Contains(r.err, missing) {
			t.Errorf("missing default key: exit %d, stderr %q; want 1", r.code, r.err)
		}
	})
}
