package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/store"
)

// plantMixedFleet adds n servers named srv-00..: every 5th never answers
// (OFFLINE), every 7th of the others has an active alert (WARNING), the
// rest answered a probe (ONLINE).
func plantMixedFleet(t *testing.T, s store.Store, n int) map[string]string {
	t.Helper()
	ctx := context.Background()
	specs := make([]store.ServerSpec, n)
	for i := range specs {
		specs[i] = store.ServerSpec{Name: fmt.Sprintf("srv-%02d", i), Host: "10.0.0.1"}
	}
	if _, err := s.ImportServers(ctx, specs); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	var results []store.ProbeResult
	for i := range n {
		sv, err := s.ServerByName(ctx, specs[i].Name)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case i%5 == 0:
			want[sv.Name] = "OFFLINE"
			continue
		case i%7 == 0:
			if _, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: sv.ID, Kind: "alert", Severity: "warning", Message: "disk"}); err != nil {
				t.Fatal(err)
			}
			want[sv.Name] = "WARNING"
		default:
			want[sv.Name] = "ONLINE"
		}
		results = append(results, store.ProbeResult{ServerID: sv.ID, OK: true})
	}
	if err := s.RecordProbeResults(ctx, results); err != nil {
		t.Fatal(err)
	}
	return want
}

type listedRow struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

func listServers(t *testing.T, u string) ([]listedRow, string) {
	t.Helper()
	a := call(t, "GET", u, "")
	if a.code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, a.code, a.body)
	}
	var rows []listedRow
	if err := json.Unmarshal(a.body, &rows); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, a.body)
	}
	return rows, a.header.Get("Link")
}

var nextLink = regexp.MustCompile(`^<(/api/servers\?[^>]*)>; rel="next"$`)

// TestServersFilterAndPaging: ?status= keeps the asked states, in the
// order of the whole list; ?limit= pages follow the Link header through
// the whole list without a gap or a repeat; bad values are 400.
func TestServersFilterAndPaging(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		want := plantMixedFleet(t, s, 23)
		srv := serve(t, s, api.Options{})

		all, link := listServers(t, srv.URL+"/api/servers")
		if len(all) != 23 || link != "" {
			t.Fatalf("whole list: %d rows, Link %q; want 23 and none", len(all), link)
		}
		for _, r := range all {
			if want[r.Name] != r.Status {
				t.Errorf("%s is %s, want %s", r.Name, r.Status, want[r.Name])
			}
		}

		for _, q := range []struct {
			query  string
			states []string
		}{
			{"offline", []string{"OFFLINE"}},
			{"OFFLINE,warning", []string{"OFFLINE", "WARNING"}},
			{"online", []string{"ONLINE"}},
			{"disabled", nil},
		} {
			got, _ := listServers(t, srv.URL+"/api/servers?status="+url.QueryEscape(q.query))
			var expect []string
			for _, r := range all {
				for _, st := range q.states {
					if r.Status == st {
						expect = append(expect, r.Name)
					}
				}
			}
			var names []string
			for _, r := range got {
				names = append(names, r.Name)
			}
			if strings.Join(names, ",") != strings.Join(expect, ",") {
				t.Errorf("status=%s: %v, want %v", q.query, names, expect)
			}
		}

		// Pages of 4 over OFFLINE and ONLINE servers add up to the
		// filtered list, in order.
		filtered, _ := listServers(t, srv.URL+"/api/servers?status=offline,online")
		var paged []listedRow
		next, pages := "/api/servers?status=offline,online&limit=4", 0
		for next != "" {
			rows, link := listServers(t, srv.URL+next)
			if len(rows) == 0 || len(rows) > 4 {
				t.Fatalf("page %s has %d rows", next, len(rows))
			}
			paged = append(paged, rows...)
			next = ""
			if link != "" {
				m := nextLink.FindStringSubmatch(link)
				if m == nil {
					t.Fatalf("Link %q is not a next link", link)
				}
				next = m[1]
			}
			if pages++; pages > 10 {
				t.Fatal("paging does not end")
			}
		}
		if fmt.Sprint(paged) != fmt.Sprint(filtered) {
			t.Errorf("pages gave %v\nwant %v", paged, filtered)
		}
		if pages != (len(filtered)+3)/4 {
			t.Errorf("%d pages for %d rows of 4", pages, len(filtered))
		}

		for _, bad := range []string{"status=down", "status=offline,", "limit=0", "limit=-1", "limit=x", "limit=", "limit=100001", "after=", "after=nosuch"} {
			a := call(t, "GET", srv.URL+"/api/servers?"+bad, "")
			if a.code != http.StatusBadRequest {
				t.Errorf("?%s: %d, want 400", bad, a.code)
				continue
			}
			if msg := errorMessage(t, a); msg == "" {
				t.Errorf("?%s: no message", bad)
			}
		}
	})
}
