package cli

import (
	"testing"

	"github.com/stacksense/heartbeat/pkg/config"
)

// storeDisplay is how doctor and errors name the store: never with its
// password, in every form a setting can take.
func TestStoreDisplay(t *testing.T) {
	for _, tt := range []struct {
		name, flag string
		env        map[string]string
		want       string
	}{
		{"sqlite flag", "sqlite:/tmp/a.db", nil, "sqlite:/tmp/a.db"},
		{"DATABASE_URL", "", map[string]string{"DATABASE_URL": "postgresql://u:pw@h/db"}, "postgresql://u:xxxxx@h/db"},
		{"seed variables", "", map[string]string{"POSTGRES_HOST": "localhost", "POSTGRES_PORT": "5433", "POSTGRES_PASSWORD": "pw"}, "postgres://postgres:xxxxx@localhost:5433/heartbeat"},
		{"keyword/value DATABASE_URL", "", map[string]string{"DATABASE_URL": "host=db user=hb password=hunter2 dbname=hb"}, "host=db user=hb password=xxxxx dbname=hb"},
		{"keyword/value --db with quotes", "host=db password='a b' dbname=x.db", nil, "host=db password=xxxxx dbname=x.db"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.ResolveStore(tt.flag, func(k string) string { return tt.env[k] }, "/home/op")
			if err != nil {
				t.Fatal(err)
			}
			if got := storeDisplay(cfg); got != tt.want {
				t.Errorf("storeDisplay = %q, want %q", got, tt.want)
			}
		})
	}
}
