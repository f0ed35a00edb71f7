// Package migrations embeds the SQL schema of both store engines.
//
// Each engine has its own directory of goose-numbered files. The numbers in
// postgres/ and sqlite/ must match one for one, so that "version N" means the
// same schema whichever store an operator runs; a test enforces it.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Postgres returns the migrations for the Postgres store.
func Postgres() fs.FS { return sub("postgres") }

// SQLite returns the migrations for the SQLite store.
func SQLite() fs.FS { return sub("sqlite") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		// The directories are embedded at build time, so this cannot happen
		// in a binary that compiled.
		panic(err)
	}
	return f
}
