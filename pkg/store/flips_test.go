package store_test

import (
	"testing"

	"github.com/stacksense/heartbeat/pkg/store"
)

// TestFlipAppender: flips added past several chunks come back whole and
// in order, and FlipsOf finds each server's run of them.
func TestFlipAppender(t *testing.T) {
	var a store.FlipAppender
	if got := a.Flips(); got != nil {
		t.Errorf("empty appender = %v, want nil", got)
	}
	const servers, each = 3001, 3 // 9,003 flips: three chunks
	for id := int64(1); id <= servers; id++ {
		for i := range each {
			a.Add(store.Flip{ServerID: id, ID: id*10 + int64(i)})
		}
	}
	got := a.Flips()
	if len(got) != servers*each {
		t.Fatalf("got %d flips, want %d", len(got), servers*each)
	}
	for i, f := range got {
		if want := int64(i/each+1)*10 + int64(i%each); f.ID != want {
			t.Fatalf("flip %d has id %d, want %d", i, f.ID, want)
		}
	}
	for _, id := range []int64{1, 1500, servers} {
		of := store.FlipsOf(got, id)
		if len(of) != each || of[0].ID != id*10 || of[each-1].ID != id*10+each-1 {
			t.Errorf("FlipsOf(%d) = %+v", id, of)
		}
		// Appending to one server's flips must not overwrite the next's.
		_ = append(of, store.Flip{ID: -1})
	}
	if next := store.FlipsOf(got, 2); next[0].ID != 20 {
		t.Errorf("appending to server 1's flips overwrote server 2's: %+v", next)
	}
	if of := store.FlipsOf(got, servers+1); of != nil {
		t.Errorf("FlipsOf(unknown) = %+v", of)
	}
}

// TestInternState: the known states come back as the constants, and an
// unknown word is copied rather than aliased.
func TestInternState(t *testing.T) {
	for _, s := range []string{store.StateOnline, store.StateOffline, store.StateWarning, store.StateMaintenance, store.StateDisabled, store.StateCutOff, store.StateReconnected, ""} {
		if got := store.InternState([]byte(s)); got != s {
			t.Errorf("InternState(%q) = %q", s, got)
		}
	}
	b := []byte("SOMETHING")
	got := store.InternState(b)
	copy(b, "XXXXXXXXX")
	if got != "SOMETHING" {
		t.Errorf("unknown state aliased its buffer: %q", got)
	}
}
