package cli_test

import (
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/stacksense/heartbeat/pkg/sshtest"
)

// Issue 9 item 9: a server that briefly presented another key and then the
// pinned one again is ONLINE, and neither `servers show` nor `doctor` keeps
// warning about the other key.
func TestProbeSSHPinnedKeyAgainClearsLastSeen(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		fleet, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 1})
		name := fleet.Server(0).Name
		if run := e.probe("--key", key); run.classOf(name) != "ok" {
			t.Fatalf("first probe: %+v", run)
		}
		stray, err := fleet.RotateHostKey(0)
		if err != nil {
			t.Fatal(err)
		}
		if run := e.probe("--key", key); run.classOf(name) != "hostkey-mismatch" {
			t.Fatalf("probe with the other key: %s", run.classOf(name))
		}
		strayFP := ssh.FingerprintSHA256(stray)
		if show := e.mustRun("servers", "show", name); !strings.Contains(show, strayFP) {
			t.Fatalf("servers show does not list the other key %s:\n%s", strayFP, show)
		}
		checks, _ := e.doctor()
		expectCheck(t, checks, "host-keys", "warn", name, "")

		if err := fleet.RestoreHostKey(0); err != nil {
			t.Fatal(err)
		}
		if run := e.probe("--key", key); run.classOf(name) != "ok" {
			t.Fatalf("probe with the pinned key again: %s", run.classOf(name))
		}
		if show := e.mustRun("servers", "show", name); strings.Contains(show, strayFP) {
			t.Errorf("servers show still lists the other key %s:\n%s", strayFP, show)
		}
		checks, _ = e.doctor()
		expectCheck(t, checks, "host-keys", "ok", "no server presented a changed host key", "")
	})
}
