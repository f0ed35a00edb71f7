package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/sqlite"
)

// childWriteEnv makes this test binary a child that opens the store at
// that path, reads its status and then tries to write, printing one line
// for each: "status: ok N" or "status: ERR", then "write: ERR". With
// childFsizeEnv set it first limits the size of any file it writes
// (RLIMIT_FSIZE), which is how a full disk looks to SQLite and works for
// root too.
const (
	childWriteEnv = "HEARTBEAT_TEST_SQLITE_WRITE"
	childFsizeEnv = "HEARTBEAT_TEST_SQLITE_FSIZE"
)

func writeChild(path string) int {
	if v := os.Getenv(childFsizeEnv); v != "" {
		limit, _ := strconv.ParseUint(v, 10, 64)
		// Past the limit the kernel sends SIGXFSZ, which kills by
		// default; ignored, the write fails with EFBIG instead.
		signal.Ignore(syscall.SIGXFSZ)
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: limit}); err != nil {
			fmt.Println("setrlimit:", err)
			return 2
		}
	}
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		fmt.Println("open:", err)
		return 1
	}
	defer s.Close()
	if snap, err := s.Status(ctx); err != nil {
		fmt.Println("status:", err)
	} else {
		fmt.Println("status: ok", len(snap.Servers))
	}
	specs := make([]store.ServerSpec, 2000)
	for i := range specs {
		specs[i] = store.ServerSpec{Name: fmt.Sprintf("more-%04d", i), Host: "10.0.0.1"}
	}
	_, err = s.ImportServers(ctx, specs)
	fmt.Println("write:", err)
	return 0
}

// seed makes a store with one server in dir and closes it.
func seed(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "hb.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddServer(context.Background(), store.ServerSpec{Name: "web1", Host: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// runChild runs writeChild on path and returns its two lines.
func runChild(t *testing.T, cmd *exec.Cmd, path string, env ...string) (status, write string) {
	t.Helper()
	cmd.Env = append(append(os.Environ(), childWriteEnv+"="+path), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("child printed %q, want a status and a write line", out)
	}
	return lines[0], lines[1]
}

func checkWriteError(t *testing.T, write, path string, causes ...string) {
	t.Helper()
	if write == "write: <nil>" {
		t.Fatal("the write succeeded")
	}
	if !strings.Contains(write, "sqlite "+path+":") {
		t.Errorf("%q does not name the file", write)
	}
	found := false
	for _, c := range causes {
		found = found || strings.Contains(write, c)
	}
	if !found {
		t.Errorf("%q does not give the cause (%s)", write, strings.Join(causes, " or "))
	}
	if strings.Contains(write, "disk I/O error (") || strings.Contains(write, "(4874)") {
		t.Errorf("%q is SQLite's raw code, not a cause", write)
	}
}

func TestDiskFullWriteFailsClearlyAndStatusReads(t *testing.T) {
	path := seed(t, t.TempDir())
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Room for the file as it is and the 32 KiB shared-memory index, not
	// for 2,000 more servers in the write-ahead log.
	limit := max(fi.Size(), 32<<10) + 8<<10
	status, write := runChild(t, exec.Command(os.Args[0], "-test.run=^$"), path, childFsizeEnv+"="+strconv.FormatInt(limit, 10))
	if status != "status: ok 1" {
		t.Errorf("status on a full disk: %q, want it to read the one server", status)
	}
	t.Log(write)
	checkWriteError(t, write, path, "disk full")
}

func TestReadOnlyFileWriteFailsClearlyAndStatusReads(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dirMode  os.FileMode
		wantWord string
	}{
		{"file", 0o777, "read-only file hb.db"},
		{"file and directory", 0o555, "read-only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := seed(t, dir)
			if err := os.Chmod(path, 0o444); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			if os.Geteuid() == 0 {
				// Root writes through file modes, so the child runs as
				// nobody, from a copy of this binary it can execute, in
				// directories it can enter.
				cmd = asNobody(t, dir)
			}
			if err := os.Chmod(dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o700) })
			status, write := runChild(t, cmd, path)
			if status != "status: ok 1" {
				t.Errorf("status on a read-only store: %q, want it to read the one server", status)
			}
			t.Log(write)
			checkWriteError(t, write, path, tc.wantWord)
		})
	}
}

// asNobody returns a command that runs a copy of this test binary as user
// nobody, with dir (a t.TempDir) and its parent opened to it; the caller
// then sets the modes it is testing.
func asNobody(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	const nobody = 65534
	bin := filepath.Join(filepath.Dir(dir), "sqlite.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	// t.TempDir made exactly these two, mode 0700; the temp root above
	// them is world-searchable.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	return cmd
}
