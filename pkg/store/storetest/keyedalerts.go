package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stacksense/heartbeat/pkg/store"
)

func keyed(serverID int64, key, msg string) store.AlertSpec {
	return store.AlertSpec{ServerID: serverID, Kind: store.KindAlert, Severity: store.SeverityWarning,
		Message: msg, Source: store.AlertSourceAPI, ExternalKey: key}
}

func activeAlerts(t *testing.T, ctx context.Context, s store.Store) []store.Alert {
	t.Helper()
	a, err := s.Alerts(ctx, false)
	if err != nil {
		t.Fatalf("Alerts: %v", err)
	}
	return a
}

// A key names at most one active alert per server: raising it again
// returns the first, resolving it frees it for a new one, and the same key
// on another server or no key at all is independent.
func testRaiseAlertByKey(t *testing.T, ctx context.Context, s store.Store) {
	web, db := mustAdd(t, ctx, s, "web1"), mustAdd(t, ctx, s, "db1")
	first, err := s.RaiseAlert(ctx, keyed(web.ID, "disk", "disk 90%"))
	if err != nil {
		t.Fatalf("RaiseAlert: %v", err)
	}
	if first.Existing || first.ExternalKey != "disk" || first.Source != store.AlertSourceAPI || first.ResolvedAt != nil {
		t.Errorf("first raise = %+v", first)
	}
	again, err := s.RaiseAlert(ctx, keyed(web.ID, "disk", "disk 95%"))
	if err != nil {
		t.Fatalf("RaiseAlert again: %v", err)
	}
	if !again.Existing || again.ID != first.ID || again.Message != "disk 90%" {
		t.Errorf("raising an active key = %+v, want alert %d returned unchanged with Existing", again, first.ID)
	}
	other, err := s.RaiseAlert(ctx, keyed(db.ID, "disk", "disk"))
	if err != nil || other.Existing || other.ID == first.ID {
		t.Errorf("same key on another server = %+v, %v; want a new alert", other, err)
	}
	plain := keyed(web.ID, "", "no key")
	p1, err1 := s.RaiseAlert(ctx, plain)
	p2, err2 := s.RaiseAlert(ctx, plain)
	if err1 != nil || err2 != nil || p1.ID == p2.ID || p1.Existing || p2.Existing || p1.ExternalKey != "" {
		t.Errorf("keyless raises = %+v %v, %+v %v; want two alerts", p1, err1, p2, err2)
	}
	st := mustStatus(t, ctx, s)
	for _, sv := range st.Servers {
		want := map[string]int{"web1": 3, "db1": 1}[sv.Name]
		if sv.ActiveAlerts != want {
			t.Errorf("%s has %d active alerts, want %d", sv.Name, sv.ActiveAlerts, want)
		}
	}
	if _, err := s.RaiseAlert(ctx, keyed(9999, "disk", "m")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("keyed raise on an unknown server: %v, want ErrNotFound", err)
	}
	for _, bad := range []string{" disk", "two\nlines", string(make([]byte, store.MaxAlertKeyLen+1))} {
		if _, err := s.RaiseAlert(ctx, keyed(web.ID, bad, "m")); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("RaiseAlert with key %q: %v, want ErrInvalid", bad, err)
		}
	}
}

func testResolveAlertByKey(t *testing.T, ctx context.Context, s store.Store) {
	web := mustAdd(t, ctx, s, "web1")
	a, err := s.RaiseAlert(ctx, keyed(web.ID, "fp1", "m"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResolveAlertByKey(ctx, web.ID, "never"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ResolveAlertByKey(unknown key) = %v, want ErrNotFound", err)
	}
	if _, err := s.ResolveAlertByKey(ctx, 9999, "fp1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ResolveAlertByKey(unknown server) = %v, want ErrNotFound", err)
	}
	r, err := s.ResolveAlertByKey(ctx, web.ID, "fp1")
	if err != nil {
		t.Fatalf("ResolveAlertByKey: %v", err)
	}
	if r.ID != a.ID || r.ResolvedAt == nil || r.ResolvedAt.Location().String() != "UTC" || r.ExternalKey != "fp1" {
		t.Errorf("ResolveAlertByKey = %+v, want alert %d resolved (UTC)", r, a.ID)
	}
	again, err := s.ResolveAlertByKey(ctx, web.ID, "fp1")
	if !errors.Is(err, store.ErrConflict) || again.ID != a.ID || again.ResolvedAt == nil {
		t.Errorf("second ResolveAlertByKey = %+v, %v; want the resolved alert and ErrConflict", again, err)
	}
	// The key is free again: a new alert, which the key now resolves.
	b, err := s.RaiseAlert(ctx, keyed(web.ID, "fp1", "again"))
	if err != nil || b.Existing || b.ID == a.ID {
		t.Fatalf("raise after resolve = %+v, %v; want a new alert", b, err)
	}
	if r, err := s.ResolveAlertByKey(ctx, web.ID, "fp1"); err != nil || r.ID != b.ID {
		t.Errorf("resolve the new one = %+v, %v; want alert %d", r, err, b.ID)
	}
	if n := len(activeAlerts(t, ctx, s)); n != 0 {
		t.Errorf("%d alerts still active, want 0", n)
	}
}

// ApplyKeyedAlerts is what one Alertmanager payload becomes: raises that
// repeat an active key change nothing, resolves of inactive keys neither,
// servers removed meanwhile are skipped, and a large batch is one call.
func testApplyKeyedAlerts(t *testing.T, ctx context.Context, s store.Store) {
	web, db := mustAdd(t, ctx, s, "web1"), mustAdd(t, ctx, s, "db1")
	if _, err := s.RaiseAlert(ctx, keyed(web.ID, "old", "old")); err != nil {
		t.Fatal(err)
	}
	res, err := s.ApplyKeyedAlerts(ctx,
		[]store.AlertSpec{keyed(web.ID, "a", "a"), keyed(web.ID, "a", "a twice"), keyed(db.ID, "a", "a"), keyed(9999, "x", "gone"), keyed(web.ID, "b", "b")},
		[]store.AlertKey{{ServerID: web.ID, Key: "old"}, {ServerID: web.ID, Key: "nothing"}, {ServerID: db.ID, Key: "old"}})
	if err != nil {
		t.Fatalf("ApplyKeyedAlerts: %v", err)
	}
	if res != (store.KeyedAlertsResult{Raised: 3, Resolved: 1}) {
		t.Errorf("ApplyKeyedAlerts = %+v, want 3 raised (web a, db a, web b), 1 resolved (web old)", res)
	}
	active := activeAlerts(t, ctx, s)
	got := map[string]bool{}
	for _, a := range active {
		got[fmt.Sprintf("%s/%s", a.ServerName, a.ExternalKey)] = true
		if a.Source != store.AlertSourceAPI {
			t.Errorf("alert %+v lost its source", a)
		}
	}
	if len(active) != 3 || !got["web1/a"] || !got["db1/a"] || !got["web1/b"] {
		t.Errorf("active alerts = %v, want web1/a, db1/a, web1/b", got)
	}
	// The same payload again: nothing new, nothing resolved.
	res, err = s.ApplyKeyedAlerts(ctx, []store.AlertSpec{keyed(web.ID, "a", "a"), keyed(db.ID, "a", "a")}, []store.AlertKey{{ServerID: web.ID, Key: "old"}})
	if err != nil || res != (store.KeyedAlertsResult{}) {
		t.Errorf("repeated payload = %+v, %v; want nothing done", res, err)
	}
	// Resolve everything by key, then raise a large batch in one call.
	res, err = s.ApplyKeyedAlerts(ctx, nil, []store.AlertKey{{ServerID: web.ID, Key: "a"}, {ServerID: db.ID, Key: "a"}, {ServerID: web.ID, Key: "b"}})
	if err != nil || res.Resolved != 3 || res.Raised != 0 {
		t.Errorf("resolve all = %+v, %v; want 3 resolved", res, err)
	}
	const n = 500
	var many []store.AlertSpec
	var keys []store.AlertKey
	for i := range n {
		many = append(many, keyed(web.ID, fmt.Sprintf("k%d", i), "m"))
		keys = append(keys, store.AlertKey{ServerID: web.ID, Key: fmt.Sprintf("k%d", i)})
	}
	if res, err := s.ApplyKeyedAlerts(ctx, many, nil); err != nil || res.Raised != n {
		t.Errorf("large batch = %+v, %v; want %d raised", res, err, n)
	}
	if res, err := s.ApplyKeyedAlerts(ctx, nil, keys); err != nil || res.Resolved != n {
		t.Errorf("large resolve = %+v, %v; want %d resolved", res, err, n)
	}
	// A raise without a key, or an invalid one, rejects the whole batch.
	for _, bad := range []store.AlertSpec{keyed(web.ID, "", "no key"), {ServerID: web.ID, Kind: "meh", Severity: store.SeverityInfo, Message: "m", ExternalKey: "k"}} {
		if _, err := s.ApplyKeyedAlerts(ctx, []store.AlertSpec{keyed(web.ID, "fine", "m"), bad}, nil); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("batch with %+v: %v, want ErrInvalid", bad, err)
		}
	}
	if n := len(activeAlerts(t, ctx, s)); n != 0 {
		t.Errorf("%d alerts active after rejected batches, want 0", n)
	}
}

// Two receivers (Alertmanager in HA sends every notification from each
// replica) raising the same keys at once record each key once.
func testConcurrentKeyedRaises(t *testing.T, ctx context.Context, s store.Store) {
	web := mustAdd(t, ctx, s, "web1")
	var batch []store.AlertSpec
	for i := range 20 {
		batch = append(batch, keyed(web.ID, fmt.Sprintf("fp%d", i), "m"))
	}
	var wg sync.WaitGroup
	raised := make([]int, 4)
	errs := make([]error, 4)
	single := make([]store.Alert, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res store.KeyedAlertsResult
			res, errs[i] = s.ApplyKeyedAlerts(ctx, batch, nil)
			raised[i] = res.Raised
			if errs[i] == nil {
				single[i], errs[i] = s.RaiseAlert(ctx, keyed(web.ID, "single", "m"))
			}
		}()
	}
	wg.Wait()
	total := 0
	for i := range 4 {
		if errs[i] != nil {
			t.Fatalf("receiver %d: %v", i, errs[i])
		}
		total += raised[i]
		if single[i].ID != single[0].ID {
			t.Errorf("RaiseAlert of one key returned alerts %d and %d", single[0].ID, single[i].ID)
		}
	}
	if total != 20 {
		t.Errorf("receivers raised %d alerts in total, want 20", total)
	}
	if n := len(activeAlerts(t, ctx, s)); n != 21 {
		t.Errorf("%d active alerts, want 21", n)
	}
}
