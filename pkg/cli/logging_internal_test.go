package cli

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestStampWriterStartsEveryLine(t *testing.T) {
	var b bytes.Buffer
	w := newStampWriter(&b)
	w.now = func() time.Time { return time.Date(2026, 11, 23, 23, 4, 5, 6e6, time.FixedZone("CET", 3600)) }
	w.Write([]byte("off\n"))
	w.enable(true)
	for _, p := range []string{"a", "b\nc\n", "", "d\n\n"} {
		if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	// UTC whatever the clock's zone; a line written in pieces gets one stamp.
	want := "off\n2026-11-23T22:04:05.006Z ab\n2026-11-23T22:04:05.006Z c\n2026-11-23T22:04:05.006Z d\n2026-11-23T22:04:05.006Z \n"
	if b.String() != want {
		t.Errorf("stamped output\n got %q\nwant %q", b.String(), want)
	}

	// slog's own time=… goes when the line already starts with one.
	b.Reset()
	newLogger(w, "text", slog.LevelInfo, true).Info("skipping this tick", "run", 3)
	if got := b.String(); got != "2026-11-23T22:04:05.006Z level=INFO msg=\"skipping this tick\" run=3\n" {
		t.Errorf("stamped slog line %q", got)
	}
	b.Reset()
	newLogger(&b, "text", slog.LevelInfo, false).Info("x")
	if !strings.HasPrefix(b.String(), "time=") {
		t.Errorf("unstamped slog line %q lost its time", b.String())
	}
}

func TestStampsFor(t *testing.T) {
	for _, tt := range []struct {
		mode       string
		file       bool
		cmd        string
		json, want bool
	}{
		{"auto", true, "heartbeat probe-ssh", false, true},
		{"auto", false, "heartbeat probe-ssh", false, false},
		{"auto", true, "heartbeat probe-ssh", true, false},
		{"auto", true, "heartbeat status", false, false},
		{"always", false, "heartbeat status", false, true},
		{"always", false, "heartbeat status", true, false},
		{"never", true, "heartbeat probe-ssh", false, false},
	} {
		if got := stampsFor(tt.mode, tt.file, tt.cmd, tt.json); got != tt.want {
			t.Errorf("stampsFor(%+v) = %v", tt, got)
		}
	}
}
