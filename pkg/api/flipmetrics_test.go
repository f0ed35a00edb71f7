package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/store"
)

// heartbeat_state_changes_total counts the flips any evaluator records
// (here: the store directly, as a probe run on another host would) after
// serve-api's first scrape, by transition; what was recorded before is not
// counted.
func TestStateChangesCounter(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		a := api.New(s, api.Options{})
		t.Cleanup(a.Close)
		sv, err := s.AddServer(ctx, store.ServerSpec{Name: "web1", Host: "web1.example.net"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil { // new → OFFLINE, before the first scrape
			t.Fatal(err)
		}
		if _, err := testutil.GatherAndCount(a.Registry(), "heartbeat_state_changes_total"); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, OK: true}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil { // OFFLINE → ONLINE
			t.Fatal(err)
		}
		if err := s.SetServerEnabled(ctx, sv.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil { // ONLINE → DISABLED
			t.Fatal(err)
		}
		want := `
# HELP heartbeat_state_changes_total State changes (flips) recorded in the store since this serve-api started, by transition (from, to); from is "new" for a server's first state; to CUT-OFF and RECONNECTED are fleet events.
# TYPE heartbeat_state_changes_total counter
heartbeat_state_changes_total{from="OFFLINE",to="ONLINE"} 1
heartbeat_state_changes_total{from="ONLINE",to="DISABLED"} 1
`
		if err := testutil.GatherAndCompare(a.Registry(), strings.NewReader(want), "heartbeat_state_changes_total"); err != nil {
			t.Error(err)
		}
		// A scrape with nothing new adds nothing.
		if err := testutil.GatherAndCompare(a.Registry(), strings.NewReader(want), "heartbeat_state_changes_total"); err != nil {
			t.Error(err)
		}
	})
}
