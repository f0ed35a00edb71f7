package api

import (
	"errors"
	"testing"
	"time"
)

// TestWriteHealthWindow: a failed write reports failing until a write
// succeeds, or until the window passes with no write at all.
func TestWriteHealthWindow(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := &writeHealth{window: time.Minute, now: func() time.Time { return now }}
	if r := h.failing(); r != "" {
		t.Fatalf("no writes yet: failing %q", r)
	}
	h.record(errors.New("attempt to write a readonly database"))
	if r := h.failing(); r != "attempt to write a readonly database" {
		t.Errorf("after a failed write: failing %q", r)
	}
	now = now.Add(time.Minute)
	if r := h.failing(); r == "" {
		t.Error("at the window's end: not failing")
	}
	now = now.Add(time.Second)
	if r := h.failing(); r != "" {
		t.Errorf("past the window with no write since: failing %q", r)
	}
	h.record(errors.New("disk full"))
	now = now.Add(time.Second)
	h.record(nil)
	if r := h.failing(); r != "" {
		t.Errorf("after a successful write: failing %q", r)
	}
	now = now.Add(time.Second)
	h.record(errors.New("disk full"))
	if r := h.failing(); r != "disk full" {
		t.Errorf("a failure after a success: failing %q", r)
	}
}
