package migrations

import (
	"io/fs"
	"testing"
)

// The same version number must mean the same schema on both engines.
func TestEnginesHaveTheSameMigrations(t *testing.T) {
	pg, err := fs.Glob(Postgres(), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	lite, err := fs.Glob(SQLite(), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(pg) == 0 {
		t.Fatal("no migrations embedded")
	}
	if len(pg) != len(lite) {
		t.Fatalf("postgres has %d migrations, sqlite %d: %v vs %v", len(pg), len(lite), pg, lite)
	}
	for i := range pg {
		if pg[i] != lite[i] {
			t.Errorf("migration %d is %s on postgres but %s on sqlite", i, pg[i], lite[i])
		}
	}
}
