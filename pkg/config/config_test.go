package config

import (
	"strings"
	"testing"
)

func envOf(m map[string]string) Getenv { return func(k string) string { return m[k] } }

func TestResolveStorePrecedence(t *testing.T) {
	tests := []struct {
		name   string
		flag   string
		env    map[string]string
		engine Engine
		where  string // URL or Path
		origin string
	}{
		{"flag wins", "sqlite:/tmp/a.db", map[string]string{"HEARTBEAT_DB": "/tmp/b.db", "DATABASE_URL": "postgres://h/db"}, SQLite, "/tmp/a.db", "--db"},
		{"HEARTBEAT_DB over DATABASE_URL", "", map[string]string{"HEARTBEAT_DB": "/tmp/b.db", "DATABASE_URL": "postgres://h/db"}, SQLite, "/tmp/b.db", "HEARTBEAT_DB"},
		{"DATABASE_URL over POSTGRES_*", "", map[string]string{"DATABASE_URL": "postgresql://u:pw@h/db", "POSTGRES_HOST": "x"}, Postgres, "postgresql://u:pw@h/db", "DATABASE_URL"},
		{"seed variables", "", map[string]string{"POSTGRES_HOST": "localhost", "POSTGRES_PORT": "5433", "POSTGRES_PASSWORD": "pw"}, Postgres, "postgres://postgres:pw@localhost:5433/heartbeat", "POSTGRES_* variables"},
		{"any one seed variable selects postgres", "", map[string]string{"POSTGRES_DB": "mon"}, Postgres, "postgres://postgres@localhost:5432/mon", "POSTGRES_* variables"},
		{"keyword/value DATABASE_URL", "", map[string]string{"DATABASE_URL": "host=db user=hb password=hunter2 dbname=hb"}, Postgres, "host=db user=hb password=hunter2 dbname=hb", "DATABASE_URL"},
		{"keyword/value --db with quotes", "host=db password='a b' dbname=x.db", nil, Postgres, "host=db password='a b' dbname=x.db", "--db"},
		{"default sqlite", "", map[string]string{}, SQLite, "/home/op/.local/state/heartbeat/heartbeat.db", "default"},
		{"XDG_STATE_HOME", "", map[string]string{"XDG_STATE_HOME": "/var/lib/op"}, SQLite, "/var/lib/op/heartbeat/heartbeat.db", "default"},
		{"relative XDG_STATE_HOME ignored", "", map[string]string{"XDG_STATE_HOME": "rel"}, SQLite, "/home/op/.local/state/heartbeat/heartbeat.db", "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ResolveStore(tt.flag, envOf(tt.env), "/home/op")
			if err != nil {
				t.Fatal(err)
			}
			where := s.URL
			if s.Engine == SQLite {
				where = s.Path
			}
			if s.Engine != tt.engine || where != tt.where || s.Origin != tt.origin {
				t.Errorf("got %s %q from %q, want %s %q from %q", s.Engine, where, s.Origin, tt.engine, tt.where, tt.origin)
			}
		})
	}
}

func TestParseStoreRejects(t *testing.T) {
	for _, v := range []string{"mysql://u:topsecret@h/db", "heartbeat.sqlite", "sqlite:", "postgres://u:topsecret@/db", "postgres://u:topsecret@h:port/db", "u:topsecret@h/db", "topsecret"} {
		_, err := ParseStore(v)
		if err == nil {
			t.Errorf("ParseStore(%q) accepted it", v)
			continue
		}
		if !strings.Contains(err.Error(), "malformed") {
			t.Errorf("ParseStore(%q) error %q does not say malformed", v, err)
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("ParseStore(%q) error leaks the password: %v", v, err)
		}
	}
}

func TestResolveStoreNoHome(t *testing.T) {
	if _, err := ResolveStore("", envOf(nil), ""); err == nil {
		t.Error("ResolveStore with no home and nothing set succeeded")
	}
}
