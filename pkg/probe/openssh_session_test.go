package probe

import (
	"context"
	"os/user"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/sshtest"
	"github.com/stacksense/heartbeat/pkg/sshtest/openssh"
)

// currentUser is the login the real sshd accepts in these tests.
func currentUser(t *testing.T) string {
	t.Helper()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return me.Username
}

// waitForLog waits (bounded) until sshd's log matches re: sshd logs the
// end of a session from its own process after the client has gone.
func waitForLog(t *testing.T, d *openssh.Server, re *regexp.Regexp) bool {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if re.MatchString(d.Log()) {
			return true
		}
	}
	return false
}

// A probe ends its session the way `ssh host true` does, with
// SSH_MSG_DISCONNECT (reason 11, "disconnected by user"), so sshd logs a
// clean disconnect at its default level instead of a broken pipe or a
// reset on every probe.
func TestOpenSSHCleanDisconnect(t *testing.T) {
	openssh.Require(t)
	t.Parallel()
	key, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, exec := range []string{"", "true"} {
		t.Run("exec="+exec, func(t *testing.T) {
			t.Parallel()
			d := openssh.StartConfig(t, key.AuthorizedKey(), "LogLevel INFO")
			target := Target{ServerID: 1, Host: "127.0.0.1", Port: d.Port, User: currentUser(t)}
			r := NewProber(Options{Auth: NewAuth("test key", key.Signer), Exec: exec}).Probe(context.Background(), &target)
			if !r.OK {
				t.Fatalf("probe: %+v\nsshd log:\n%s", r, d.Log())
			}
			clean := regexp.MustCompile(`Received disconnect from 127\.0\.0\.1 port \d+:11: disconnected by user`)
			if !waitForLog(t, d, clean) {
				t.Errorf("sshd logged no clean disconnect:\n%s", d.Log())
			}
			// sshd logs the teardown right after the disconnect line; give
			// a broken pipe the same chance to appear.
			waitForLog(t, d, regexp.MustCompile(`Disconnected from user`))
			// Only the probe's session counts: the helper's own readiness
			// dial before it logs "Connection closed" too.
			_, session, _ := strings.Cut(d.Log(), "Accepted publickey")
			for _, noise := range []string{"Broken pipe", "Connection reset", "Connection closed"} {
				if strings.Contains(session, noise) {
					t.Errorf("sshd logged %q for the probe's session:\n%s", noise, d.Log())
				}
			}
		})
	}
}
