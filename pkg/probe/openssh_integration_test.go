package probe

import (
	"github.com/stacksense/heartbeat/pkg/failure"

	"bytes"
	"context"
	"os/user"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/sshtest"
	"github.com/stacksense/heartbeat/pkg/sshtest/openssh"
)

func TestOpenSSHIntegration(t *testing.T) {
	openssh.Require(t)
	t.Parallel()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	key, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	d := openssh.Start(t, key.AuthorizedKey())
	target := Target{ServerID: 1, Name: "openssh", Host: "127.0.0.1", Port: d.Port, User: me.Username}
	opts := Options{Auth: NewAuth("test key", key.Signer), Exec: "true", Timeout: 10 * time.Second}
	ctx := context.Background()

	r := NewProber(opts).Probe(ctx, &target)
	if !r.OK || len(r.HostKey) == 0 {
		t.Fatalf("probe real sshd as %s: %+v\nsshd log:\n%s", me.Username, r, d.Log())
	}
	t.Logf("ok: latency %v phases %+v", r.Latency, r.Phases)
	target.PinnedHostKey = r.HostKey

	wrong, _ := sshtest.NewClientKey()
	r = NewProber(Options{Auth: NewAuth("wrong key", wrong.Signer)}).Probe(ctx, &target)
	if r.Class != failure.Auth {
		t.Errorf("wrong user key: %+v", r)
	}

	// A reinstalled server: same address, new host key.
	d.RegenerateHostKey(t)
	r = NewProber(opts).Probe(ctx, &target)
	if r.Class != failure.HostKeyMismatch || bytes.Equal(r.HostKey, target.PinnedHostKey) || len(r.HostKey) == 0 {
		t.Errorf("after host key change: %+v", r)
	}
}
