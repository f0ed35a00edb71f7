package doctor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/doctor"
	"github.com/stacksense/heartbeat/pkg/store"
)

func TestNotifyCheck(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		check := func() doctor.Result { return runChecks(t, &shifted{Store: s}, nil)[doctor.CheckNotify] }
		if got := check(); got.Status != doctor.OK || !strings.Contains(got.Message, "no notification channels") {
			t.Errorf("without channels: %+v", got)
		}
		sv, err := s.AddServer(ctx, store.ServerSpec{Name: "web1", Host: "10.0.0.5"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddChannel(ctx, store.ChannelSpec{Name: "ops", URL: "webhook+http://127.0.0.1:9/", AllServers: true}); err != nil {
			t.Fatal(err)
		}
		now, _ := s.Now(ctx)
		for _, at := range []time.Time{now, now.Add(-10 * time.Minute)} { // ONLINE, then OFFLINE
			if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, OK: true, At: at}}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil {
				t.Fatal(err)
			}
		}
		if got := check(); got.Status != doctor.OK || !strings.Contains(got.Message, "1 channels, none failing") {
			t.Errorf("a healthy channel: %+v", got)
		}
		// Queued 20 minutes ago and never drained.
		if _, err := s.EnqueueDeliveries(ctx, store.EnqueueParams{Now: now.Add(-20 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		got := check()
		if got.Status != doctor.Warn || !strings.Contains(got.Message, "1 notifications wait, the oldest queued 20m") || !strings.Contains(got.Fix, "notify drain") {
			t.Errorf("an old backlog: %+v", got)
		}
		// An attempt fails: the channel is named with its error.
		ds, err := s.ClaimDeliveries(ctx, store.ClaimParams{Claimer: "t"})
		if err != nil || len(ds) != 1 {
			t.Fatalf("claim = %+v, %v", ds, err)
		}
		if _, err := s.RecordDeliveryOutcomes(ctx, store.OutcomeParams{Claimer: "t", Outcomes: []store.DeliveryOutcome{{ID: ds[0].ID, Error: "connection refused"}}}); err != nil {
			t.Fatal(err)
		}
		got = check()
		if got.Status != doctor.Warn || !strings.Contains(got.Message, "1 of 1 channels fail: ops (last attempt") ||
			!strings.Contains(got.Message, "connection refused; 1 being retried") || !strings.Contains(got.Fix, "notify test") {
			t.Errorf("a failing channel: %+v", got)
		}
	})
}
