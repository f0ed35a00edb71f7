package notify

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var at = time.Date(2026, 11, 23, 22, 10, 5, 0, time.UTC)

func TestTextSingleEvents(t *testing.T) {
	for _, c := range []struct {
		name             string
		e                Event
		wantTitle        string
		wantBodyPrefix   string
		wantBodyContains []string
		wantBodyLacks    []string
	}{
		{
			name:             "down",
			e:                Event{ID: 1, Kind: KindDown, ServerName: "web1", Host: "10.0.0.5", From: "ONLINE", To: "OFFLINE", At: at, Reason: "no heartbeat for 60s; last probe: timeout"},
			wantTitle:        "web1 is OFFLINE",
			wantBodyPrefix:   "web1 is OFFLINE: no heartbeat for 60s; last probe: timeout",
			wantBodyContains: []string{"host 10.0.0.5", "was ONLINE", "at 2026-11-23 22:10:05 UTC"},
		},
		{
			name:           "up with downtime",
			e:              Event{ID: 2, Kind: KindUp, ServerName: "web1", From: "OFFLINE", To: "ONLINE", At: at, DownFor: 12 * time.Minute},
			wantTitle:      "web1 is back ONLINE",
			wantBodyPrefix: "web1 is back ONLINE after 12m (was OFFLINE since 2026-11-23 21:58:05 UTC)",
		},
		{
			name:           "up without known downtime",
			e:              Event{ID: 3, Kind: KindUp, ServerName: "web1", From: "OFFLINE", To: "ONLINE", At: at},
			wantTitle:      "web1 is back ONLINE",
			wantBodyPrefix: "web1 is back ONLINE (was OFFLINE)",
		},
		{
			name:           "reminder",
			e:              Event{ID: 4, Kind: KindReminder, ServerName: "db1", From: "OFFLINE", To: "OFFLINE", At: at, DownFor: 2 * time.Hour, Reason: "connection refused"},
			wantTitle:      "db1 is still OFFLINE",
			wantBodyPrefix: "db1 is still OFFLINE (down for 2h): connection refused",
		},
		{
			name:           "warning",
			e:              Event{ID: 5, Kind: KindWarning, ServerName: "db1", From: "ONLINE", To: "WARNING", At: at, Reason: "2 active alerts"},
			wantTitle:      "db1 is WARNING",
			wantBodyPrefix: "db1 is WARNING: 2 active alerts",
		},
		{
			name:           "maintenance start",
			e:              Event{ID: 6, Kind: KindMaintenance, ServerName: "db1", From: "ONLINE", To: "MAINTENANCE", At: at, Reason: "maintenance started by root: kernel upgrade"},
			wantTitle:      "db1 is in MAINTENANCE",
			wantBodyPrefix: "db1 is in MAINTENANCE: maintenance started by root: kernel upgrade",
		},
		{
			name:           "maintenance end",
			e:              Event{ID: 7, Kind: KindMaintenance, ServerName: "db1", From: "MAINTENANCE", To: "OFFLINE", At: at},
			wantTitle:      "db1 left MAINTENANCE: now OFFLINE",
			wantBodyPrefix: "db1 left MAINTENANCE: now OFFLINE",
		},
		{
			name:           "monitoring host cut off",
			e:              Event{ID: 8, Kind: KindCutOff, Host: "monitor1", At: at, Reason: "every probe failed to connect"},
			wantTitle:      "monitoring host monitor1 is cut off",
			wantBodyPrefix: "monitoring host monitor1 is cut off: its probes reached no server, so no server was marked OFFLINE from this run: every probe failed to connect",
		},
		{
			name:           "hostile name is escaped",
			e:              Event{ID: 9, Kind: KindDown, ServerName: "evil\n\x1b[31mweb1\u202e", From: "ONLINE", To: "OFFLINE", At: at, Reason: "line1\nline2"},
			wantTitle:      `evil\n\x1b[31mweb1\u202e is OFFLINE`,
			wantBodyPrefix: `evil\n\x1b[31mweb1\u202e is OFFLINE: line1\nline2`,
			wantBodyLacks:  []string{"\x1b", "\u202e", "line1\nline2"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			title, body := Text(Message{Events: []Event{c.e}})
			if title != c.wantTitle {
				t.Errorf("title = %q, want %q", title, c.wantTitle)
			}
			if !strings.HasPrefix(body, c.wantBodyPrefix) {
				t.Errorf("body = %q, want prefix %q", body, c.wantBodyPrefix)
			}
			for _, s := range c.wantBodyContains {
				if !strings.Contains(body, s) {
					t.Errorf("body %q lacks %q", body, s)
				}
			}
			for _, s := range c.wantBodyLacks {
				if strings.Contains(body, s) || strings.Contains(title, s) {
					t.Errorf("title %q or body %q contains %q", title, body, s)
				}
			}
			if strings.Contains(title, "\n") {
				t.Errorf("title %q has a newline", title)
			}
		})
	}
}

func TestTextTest(t *testing.T) {
	m := TestMessage("ops", "monitor1", at)
	if !strings.HasPrefix(m.Key(), "test-") || m.Key() == (Event{ID: 0, Kind: KindDown}).Key() {
		t.Errorf("test message key %q", m.Key())
	}
	title, body := Text(m)
	want := "TEST message from heartbeat on monitor1 — channel ops works"
	if title != want || !strings.HasPrefix(body, want) {
		t.Errorf("Text = %q, %q; want %q", title, body, want)
	}
}

func TestTextGroupedIsBounded(t *testing.T) {
	var events []Event
	for i := range 14 {
		to, from := "OFFLINE", "ONLINE"
		if i >= 12 {
			to, from = "ONLINE", "OFFLINE"
		}
		events = append(events, Event{ID: int64(i + 1), Kind: KindDown, ServerName: fmt.Sprintf("web%d", i+1), From: from, To: to, At: at})
	}
	title, body := Text(Message{Events: events, Grouped: true})
	if want := "14 servers changed state: 12 OFFLINE, 2 ONLINE"; title != want {
		t.Errorf("title = %q, want %q", title, want)
	}
	if !strings.Contains(body, "- web1: ONLINE → OFFLINE") || !strings.Contains(body, "- web14: OFFLINE → ONLINE") {
		t.Errorf("body lacks the servers:\n%s", body)
	}
	if strings.Contains(body, "more") {
		t.Errorf("14 servers fit the list, body says more:\n%s", body)
	}

	events = nil
	for i := range 500 {
		events = append(events, Event{ID: int64(i + 1), Kind: KindDown, ServerName: fmt.Sprintf("host%03d", i), From: "ONLINE", To: "OFFLINE", At: at})
	}
	title, body = Text(Message{Events: events, Grouped: true})
	if want := "500 servers changed state: 500 OFFLINE"; title != want {
		t.Errorf("title = %q, want %q", title, want)
	}
	if got := strings.Count(body, "\n- "); got != GroupListLimit {
		t.Errorf("body lists %d servers, want %d", got, GroupListLimit)
	}
	if !strings.HasSuffix(body, "\nand 480 more") || strings.Contains(body, "host020") {
		t.Errorf("body does not end with the remainder after host019:\n%s", body)
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                               "0s",
		45 * time.Second:                "45s",
		12*time.Minute + 30*time.Second: "12m",
		2 * time.Hour:                   "2h",
		2*time.Hour + 5*time.Minute:     "2h5m",
		3*24*time.Hour + 4*time.Hour:    "3d4h",
		48 * time.Hour:                  "2d",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestKeys(t *testing.T) {
	down := Event{ID: 42, Kind: KindDown, At: at}
	rem1 := Event{ID: 42, Kind: KindReminder, At: at}
	rem2 := Event{ID: 42, Kind: KindReminder, At: at.Add(time.Hour)}
	if down.Key() != "flip-42" {
		t.Errorf("down key = %q", down.Key())
	}
	if rem1.Key() == rem2.Key() || rem1.Key() == down.Key() {
		t.Errorf("reminders of one flip share a key: %q %q %q", down.Key(), rem1.Key(), rem2.Key())
	}
	g1 := Message{Events: []Event{down, rem1}, Grouped: true}
	g2 := Message{Events: []Event{down, rem2}, Grouped: true}
	if g1.Key() == g2.Key() || g1.Key() != (Message{Events: []Event{down, rem1}, Grouped: true}).Key() {
		t.Errorf("group keys: %q %q", g1.Key(), g2.Key())
	}
}
