package storetest

import (
	"context"
	"testing"

	"github.com/stacksense/heartbeat/pkg/store"
)

// A setting reads back as written, an unset one as not set, and a second
// write replaces the first.
func testSettings(t *testing.T, ctx context.Context, s store.Store) {
	if v, ok, err := s.Setting(ctx, store.SettingQuorum); err != nil || ok || v != "" {
		t.Fatalf("unset Setting = %q, %v, %v; want not set", v, ok, err)
	}
	for _, want := range []string{"2", "3"} {
		if err := s.SetSetting(ctx, store.SettingQuorum, want); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := s.Setting(ctx, store.SettingQuorum); err != nil || !ok || v != want {
			t.Fatalf("Setting after SetSetting(%q) = %q, %v, %v", want, v, ok, err)
		}
	}
	if v, ok, err := s.Setting(ctx, "no-such-setting"); err != nil || ok {
		t.Fatalf("other key = %q, %v, %v; want not set", v, ok, err)
	}
}
