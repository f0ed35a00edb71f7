package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/stacksense/heartbeat/pkg/store"
)

// interpret is the one place that turns what the driver returned into the
// store's vocabulary: no rows is store.ErrNotFound, a unique violation
// store.ErrConflict, a check violation store.ErrInvalid, and the file-level
// failures (read-only, disk full, busy, cannot open) one line naming the
// file and the cause instead of "disk I/O error (4874)". Methods wrap its
// result with what they were doing; the driver error stays reachable with
// errors.As.
func (s *Store) interpret(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w", store.ErrNotFound)
	}
	var e *msqlite.Error
	if !errors.As(err, &e) {
		return err
	}
	code := e.Code()
	switch code {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return &store.DriverError{Msg: "already exists", Kind: store.ErrConflict, Err: err}
	case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL:
		return &store.DriverError{Msg: "value out of range: " + e.Error(), Kind: store.ErrInvalid, Err: err}
	}
	var cause string
	switch code & 0xff { // the primary result code
	case sqlite3.SQLITE_READONLY:
		cause = s.readOnlyCause()
	case sqlite3.SQLITE_FULL:
		cause = "disk full"
	case sqlite3.SQLITE_IOERR:
		// SQLite does not say why a write or the shared-memory file
		// (-shm, extended code 4874) failed; the file system can.
		cause = s.ioCause()
	case sqlite3.SQLITE_CANTOPEN:
		cause = "cannot open the file (" + s.readOnlyCause() + ")"
	case sqlite3.SQLITE_BUSY:
		cause = "database is locked by another process for longer than the busy timeout"
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		cause = "file is corrupt or not a heartbeat database"
	default:
		return err
	}
	return &store.DriverError{Msg: fmt.Sprintf("sqlite %s: %s", s.path, cause), Err: err}
}

// readOnlyOpenError reports whether opening failed because the file or
// its directory cannot be written, as opposed to missing or corrupt.
func readOnlyOpenError(err error) bool {
	var e *msqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN:
		return true
	}
	return false
}

// unavailable is an open failure: it matches store.ErrUnavailable and
// names the file once.
func unavailable(path string, err error) error {
	var k *store.DriverError
	if errors.As(err, &k) && k.Kind == nil {
		return &store.DriverError{Msg: k.Msg, Kind: store.ErrUnavailable, Err: k.Err}
	}
	return fmt.Errorf("open sqlite %s: %w: %w", path, store.ErrUnavailable, err)
}

// readOnlyCause says which of the database file, its WAL files and its
// directory this process cannot write.
func (s *Store) readOnlyCause() string {
	dir := filepath.Dir(s.path)
	for _, p := range []string{s.path, s.path + "-wal", s.path + "-shm"} {
		if err := unix.Access(p, unix.W_OK); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Sprintf("read-only file %s (%v)", filepath.Base(p), err)
		}
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return fmt.Sprintf("read-only directory %s (%v)", dir, err)
	}
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) == nil && st.Flags&unix.ST_RDONLY != 0 {
		return "read-only file system"
	}
	return "read-only file (permission denied)"
}

// ioCause explains an SQLITE_IOERR from the state of the file system.
func (s *Store) ioCause() string {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(s.path), &st); err == nil {
		if st.Flags&unix.ST_RDONLY != 0 {
			return "read-only file system"
		}
		if st.Bavail == 0 {
			return "disk full"
		}
	}
	if err := unix.Access(s.path, unix.W_OK); err != nil {
		return s.readOnlyCause()
	}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_FSIZE, &lim) == nil && lim.Cur != unix.RLIM_INFINITY {
		return fmt.Sprintf("disk full (file size limit of %d bytes reached)", lim.Cur)
	}
	return "disk I/O error (disk full, read-only or failing?)"
}
