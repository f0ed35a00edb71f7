package doctor_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/stacksense/heartbeat/pkg/doctor"
	"github.com/stacksense/heartbeat/pkg/store"
)

// The token-less allowance is a migration aid: doctor warns while any
// server has it, naming how many and how to switch it off, and is quiet
// again once every server is switched off.
func TestTokenlessCheck(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		// doctor closes the store it opened; this one outlives each run.
		check := func() doctor.Result { return runChecks(t, unclosed{s}, nil)[doctor.CheckTokenless] }
		if got := check(); got.Status != doctor.OK || got.Message != "no server accepts pushes without a token" {
			t.Errorf("empty fleet: %+v", got)
		}
		var ids []int64
		for _, name := range []string{"web1", "web2", "web3"} {
			sv, err := s.AddServer(ctx, store.ServerSpec{Name: name, Host: "10.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, sv.ID)
		}
		if got := check(); got.Status != doctor.OK {
			t.Errorf("servers with the default (off): %+v", got)
		}
		lan := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
		for _, id := range ids[1:] {
			if err := s.SetServerTokenless(ctx, id, lan); err != nil {
				t.Fatal(err)
			}
		}
		got := check()
		if got.Status != doctor.Warn || !strings.Contains(got.Message, "2 server(s) accept pushes without a token") ||
			!strings.Contains(got.Message, "web2, web3") || strings.Contains(got.Message, "web1") ||
			!strings.Contains(got.Fix, "heartbeat servers set web2 --no-tokenless") || !strings.Contains(got.Fix, "heartbeat servers token web2") {
			t.Errorf("two servers allow token-less pushes: %+v", got)
		}
		for _, id := range ids[1:] {
			if err := s.SetServerTokenless(ctx, id, nil); err != nil {
				t.Fatal(err)
			}
		}
		if got := check(); got.Status != doctor.OK {
			t.Errorf("after switching off: %+v", got)
		}
	})
}

// unclosed is a store whose Close is left to the test's cleanup.
type unclosed struct{ store.Store }

func (unclosed) Close() error { return nil }
