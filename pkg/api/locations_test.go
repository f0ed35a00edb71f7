package api_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/store"
)

// While two locations run, the page and GET /api/servers say what each
// location saw.
func TestPostgresLocationsOnPageAndAPI(t *testing.T) {
	t.Parallel()
	s := openPostgres(t)
	ctx := context.Background()
	sv, err := s.AddServer(ctx, store.ServerSpec{Name: "web-1", Host: "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	leaser := s.(store.ProbeLeaser)
	for _, r := range []struct {
		loc string
		ok  bool
	}{{"fra", true}, {"nyc", false}} {
		run, err := leaser.StartSharedRun(ctx, "mon-"+r.loc, r.loc, 1, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		res := store.ProbeResult{ServerID: sv.ID, OK: r.ok, Location: r.loc}
		if !r.ok {
			res.ErrorClass, res.Error = "refused", "connection refused"
		}
		if err := s.RecordProbeResults(ctx, []store.ProbeResult{res}); err != nil {
			t.Fatal(err)
		}
		run.Probed = 1
		if _, err := s.FinishRun(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	srv := serve(t, s, api.Options{})
	page := string(call(t, "GET", srv.URL+"/", "").body)
	if !strings.Contains(page, `<span class="locs muted">seen from fra; nyc: refused</span>`) {
		t.Errorf("page lacks the locations of web-1:\n%s", page)
	}
	a := call(t, "GET", srv.URL+"/api/servers/"+strconv.FormatInt(sv.ID, 10), "")
	var row struct {
		Status    string `json:"status"`
		SeenFrom  string `json:"seen_from"`
		Locations []struct {
			Location   string `json:"location"`
			Says       string `json:"says"`
			ErrorClass string `json:"error_class"`
		} `json:"locations"`
	}
	if err := json.Unmarshal(a.body, &row); err != nil {
		t.Fatalf("GET /api/servers/ID = %d %s: %v", a.code, a.body, err)
	}
	if row.Status != "ONLINE" || row.SeenFrom != "seen from fra; nyc: refused" || len(row.Locations) != 2 ||
		row.Locations[0].Says != "seen" || row.Locations[1].Says != "failed" || row.Locations[1].ErrorClass != "refused" {
		t.Errorf("GET /api/servers/ID = %s", a.body)
	}
}
