package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clusterUser is the superuser initdb creates, and the system user the
// cluster runs as when the tests run as root.
const clusterUser = "postgres"

// maxSocketPath keeps "<dir>/.s.PGSQL.5432" under the 107-byte limit of a
// unix socket path; a long TMPDIR would otherwise make the server fail to
// start with a confusing error.
const maxSocketPath = 90

// cluster is a throwaway Postgres cluster in a temp dir, reachable only
// through a unix socket in that dir.
type cluster struct {
	// dir holds data/, postgres.log and the socket.
	dir   string
	pgCtl string
	// cred is the identity initdb and pg_ctl run as; nil means our own.
	cred *syscall.Credential
}

// missingToolsError means initdb or pg_ctl is not installed: Postgres is
// unavailable rather than broken, so the test may be skipped outside CI.
type missingToolsError struct{ what string }

func (e *missingToolsError) Error() string { return e.what }

// startCluster runs initdb and pg_ctl start in a new temp dir. The caller
// owns the cluster and must call stop.
func startCluster(ctx context.Context) (*cluster, error) {
	initdb, pgCtl, err := findTools()
	if err != nil {
		return nil, err
	}
	cred, err := clusterCredential()
	if err != nil {
		return nil, err
	}

	dir, err := os.MkdirTemp(tempParent(cred != nil), "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("create cluster dir: %w", err)
	}
	c := &cluster{dir: dir, pgCtl: pgCtl, cred: cred}
	if cred != nil {
		// initdb creates data/ inside dir and the server puts its socket and
		// log there, so the postgres user must own it. Root can still reach
		// the socket in a 0700 dir, so nothing wider is needed.
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("chown cluster dir %s to %s: %w", dir, clusterUser, err)
		}
	}

	if err := c.init(ctx, initdb); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if _, err := c.run(ctx, pgCtl, "start", "-D", c.dataDir(), "-l", c.logFile(), "-w", "-t", "60"); err != nil {
		err = fmt.Errorf("start throwaway cluster: %w%s", err, c.logTail())
		// pg_ctl may have timed out with the postmaster still coming up.
		c.stop()
		return nil, err
	}
	return c, nil
}

// init runs initdb and writes the settings that make the cluster private
// and fast.
func (c *cluster) init(ctx context.Context, initdb string) error {
	// --no-sync and fsync=off: the data is thrown away, so durability only
	// costs time. --locale=C avoids depending on the host's locales.
	if _, err := c.run(ctx, initdb, "-D", c.dataDir(), "-U", clusterUser, "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	// Settings go in postgresql.conf rather than pg_ctl -o, which passes
	// them through a shell and would need quoting of the dir.
	conf := fmt.Sprintf(`
# pgtest: unix socket only, in the cluster dir, so clusters never collide.
listen_addresses = ''
unix_socket_directories = '%s'
port = 5432
fsync = off
synchronous_commit = off
full_page_writes = off
`, strings.ReplaceAll(c.dir, "'", "''"))
	path := filepath.Join(c.dataDir(), "postgresql.conf")
	// The file belongs to the postgres user; appending as root keeps that.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// stop shuts the cluster down and removes its dir.
func (c *cluster) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	// Immediate mode skips the shutdown checkpoint: the data is discarded.
	if _, err := c.run(ctx, c.pgCtl, "stop", "-D", c.dataDir(), "-m", "immediate", "-w"); err != nil {
		// No postmaster.pid means it never started or is already gone.
		if _, statErr := os.Stat(filepath.Join(c.dataDir(), "postmaster.pid")); statErr == nil {
			errs = append(errs, fmt.Errorf("stop throwaway cluster in %s: %w", c.dir, err))
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove throwaway cluster dir: %w", err))
	}
	return errors.Join(errs...)
}

// adminURL connects to the cluster's postgres database over its socket.
func (c *cluster) adminURL() *url.URL {
	return &url.URL{
		Scheme:   "postgres",
		User:     url.User(clusterUser),
		Path:     "/postgres",
		RawQuery: url.Values{"host": {c.dir}, "sslmode": {"disable"}}.Encode(),
	}
}

func (c *cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *cluster) logFile() string { return filepath.Join(c.dir, "postgres.log") }

// logTail returns the end of the server log, to explain a failed start.
func (c *cluster) logTail() string {
	b, err := os.ReadFile(c.logFile())
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\nserver log:\n" + string(b)
}

// run runs a Postgres tool as the cluster's user and returns its output.
func (c *cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	// The tools resolve paths against the working directory, which the
	// postgres user may not be able to enter (e.g. a checkout under /root).
	cmd.Dir = c.dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// The postmaster pg_ctl starts writes to the log file, not our pipe;
	// WaitDelay is a guard in case a future version keeps it open.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), args[0], err, strings.TrimSpace(out.String()))
	}
	return out.Bytes(), nil
}

// findTools locates initdb and a pg_ctl of the same version: PATH first
// (it may hold symlinks, as on the CI image), then Debian's versioned
// /usr/lib/postgresql/*/bin, newest first.
func findTools() (initdb, pgCtl string, err error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	versioned, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(versioned, func(i, j int) bool { return pgMajor(versioned[i]) > pgMajor(versioned[j]) })
	dirs = append(dirs, versioned...)

	for _, d := range dirs {
		i, p := filepath.Join(d, "initdb"), filepath.Join(d, "pg_ctl")
		if isExecutable(i) && isExecutable(p) {
			return i, p, nil
		}
	}
	return "", "", &missingToolsError{"initdb and pg_ctl not found on PATH or under /usr/lib/postgresql/*/bin"}
}

// pgMajor extracts the major version from /usr/lib/postgresql/<N>/bin.
func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// clusterCredential returns the identity to run initdb and pg_ctl as:
// nil for our own, or the postgres system user when we are root, because
// both tools refuse to run as root.
func clusterCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(clusterUser)
	if err != nil {
		return nil, fmt.Errorf("running as root, and initdb refuses root: look up system user %q to run it as: %w", clusterUser, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid of %s: %w", clusterUser, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid of %s: %w", clusterUser, err)
	}
	// Groups left nil: the children drop root's supplementary groups.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// tempParent picks where the cluster dir goes. The socket path must stay
// short, and when the cluster runs as another user every ancestor must be
// traversable by it, which /tmp is and an arbitrary TMPDIR may not be.
func tempParent(otherUser bool) string {
	parent := os.TempDir()
	if otherUser || len(parent)+len("/pgtest-1234567890/.s.PGSQL.5432") > maxSocketPath {
		return "/tmp"
	}
	return parent
}
