// Package scripts_test checks the deployment files against the real tools:
// setup_heartbeat_cron.sh against cron (with `crontab -l` as the judge), the
// systemd units with systemd-analyze, the logrotate snippet with logrotate.
//
// The cron tests create a throwaway user per test (so they need root) and
// never touch the invoking user's crontab. Missing tools skip a test, or
// fail it under CI=true.
package scripts_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/stacksense/heartbeat/pkg/doctor"
	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/sshtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const script = "../setup_heartbeat_cron.sh"

// rootPath is the PATH the script runs with, as from a root login shell.
const rootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// requireTool returns the path of a tool the test needs, skipping the test
// if it is missing (failing it under CI=true).
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s not found (Debian package %s)", name, pkg)
	}
	return p
}

func missing(t *testing.T, format string, a ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("prerequisite missing under CI=true: "+format, a...)
	}
	t.Skipf("skipped: "+format, a...)
}

func TestCronScriptLint(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "readonly MARKER='"+doctor.CronMarker+"'") {
		t.Errorf("the script's MARKER differs from doctor.CronMarker %q", doctor.CronMarker)
	}
	if !strings.Contains(string(body), "\nset -euo pipefail\n") {
		t.Error("the script does not set -euo pipefail")
	}
	out, err := exec.Command("bash", script, "--help").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "Usage: setup_heartbeat_cron.sh") {
		t.Errorf("--help: %v\n%s", err, out)
	}
	out, err = exec.Command("bash", script, "--bogus").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown argument '--bogus'") {
		t.Errorf("--bogus: %v\n%s", err, out)
	}
	sc := requireTool(t, "shellcheck", "shellcheck")
	if out, err := exec.Command(sc, "--severity=style", script).CombinedOutput(); err != nil {
		t.Errorf("shellcheck %s: %v\n%s", script, err, out)
	}
}

// cronFixture is what every cron subtest shares: the built binary.
type cronFixture struct {
	binary string
}

// newCronFixture checks the prerequisites (root, crontab, a running cron
// daemon, starting one if needed) and builds the binary once.
func newCronFixture(t *testing.T) *cronFixture {
	t.Helper()
	requireTool(t, "crontab", "cron")
	if os.Geteuid() != 0 {
		// Throwaway users need root; the invoking user's crontab is never used.
		t.Skip("skipped: the cron tests create throwaway users and need root")
	}
	requireTool(t, "runuser", "util-linux")
	requireTool(t, "useradd", "passwd")
	if !cronDaemonRunning() {
		cron := requireTool(t, "cron", "cron")
		if out, err := exec.Command(cron).CombinedOutput(); err != nil {
			t.Fatalf("start the cron daemon: %v\n%s", err, out)
		}
		t.Log("started the cron daemon")
	}

	dir := t.TempDir()
	// The throwaway users must reach the binary through the temp dirs.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "heartbeat")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	start := time.Now()
	build := exec.Command(goTool, "build", "-o", bin, "../cmd/heartbeat")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %s in %s", bin, time.Since(start).Round(time.Millisecond))
	return &cronFixture{binary: bin}
}

// cronUser is a throwaway account whose crontab a subtest owns.
type cronUser struct {
	name, home string
	uid, gid   int
}

func newCronUser(t *testing.T) *cronUser {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "hbtest" + hex.EncodeToString(b)
	if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		exec.Command("crontab", "-u", name, "-r").Run()
		if out, err := exec.Command("userdel", "--remove", name).CombinedOutput(); err != nil {
			t.Logf("userdel %s: %v\n%s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &cronUser{name: name, home: u.HomeDir, uid: uid, gid: gid}
}

// writeFile writes a file in the user's home, owned by them.
func (u *cronUser) writeFile(t *testing.T, rel string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(u.home, rel)
	for d := filepath.Dir(p); d != u.home && d != "/"; d = filepath.Dir(d) {
		defer os.Chown(d, u.uid, u.gid)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, u.uid, u.gid); err != nil {
		t.Fatal(err)
	}
	return p
}

// giveKey puts a probe key at ~/.ssh/id_ed25519, where probe-ssh and
// doctor look by default.
func (u *cronUser) giveKey(t *testing.T) *sshtest.ClientKey {
	t.Helper()
	key, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "id_ed25519")
	if err := key.WriteFile(tmp, nil); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	u.writeFile(t, ".ssh/id_ed25519", pem, 0o600)
	return key
}

// crontab is `crontab -l` for the user ("" when they have none).
func (u *cronUser) crontab(t *testing.T) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command("crontab", "-u", u.name, "-l")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if strings.Contains(errb.String(), "no crontab for") {
			return ""
		}
		t.Fatalf("crontab -u %s -l: %v: %s", u.name, err, errb.String())
	}
	return out.String()
}

func (u *cronUser) setCrontab(t *testing.T, content string) {
	t.Helper()
	cmd := exec.Command("crontab", "-u", u.name, "-")
	cmd.Stdin = strings.NewReader(content)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install crontab: %v\n%s", err, out)
	}
}

// run runs a command as the user with cron's environment, in their home.
func (u *cronUser) run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"-u", u.name, "--", "env", "-i", "HOME=" + u.home, "LOGNAME=" + u.name,
		"PATH=/usr/bin:/bin", "SHELL=/bin/sh"}, args...)
	cmd := exec.CommandContext(ctx, "runuser", full...)
	cmd.Dir = u.home
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

type scriptResult struct {
	stdout, stderr string
	code           int
}

// script runs setup_heartbeat_cron.sh as root for u, with only the
// environment given (plus a root login's PATH and HOME).
func (f *cronFixture) script(t *testing.T, u *cronUser, env []string, args ...string) scriptResult {
	t.Helper()
	return runScript(t, append([]string{"PATH=" + rootPath}, env...), append([]string{"--user", u.name, "--binary", f.binary}, args...)...)
}

func runScript(t *testing.T, env []string, args ...string) scriptResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/bash", append([]string{script}, args...)...)
	cmd.Env = append([]string{"HOME=/root", "LOGNAME=root", "USER=root"}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", script, err)
	}
	return scriptResult{out.String(), errb.String(), code}
}

func (r scriptResult) mustSucceed(t *testing.T, what string) scriptResult {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, r.code, r.stdout, r.stderr)
	}
	return r
}

// otherLines is a crontab the script must leave byte for byte: comments,
// blank lines, an environment line, a %, trailing blanks, a commented-out
// probe line and a look-alike without the marker in a comment.
const otherLines = "# my jobs\n" +
	"MAILTO=\"\"\n" +
	"\n" +
	"*/5 * * * * date +\\%s >> /tmp/hb-test-date   \n" +
	"# * * * * * /usr/bin/heartbeat probe-ssh   (old, by hand)\n" +
	"@reboot /bin/true\n"

// managedLines returns the crontab lines carrying the marker.
func managedLines(tab string) []string {
	var out []string
	for _, l := range strings.Split(tab, "\n") {
		if strings.Contains(l, doctor.CronMarker) {
			out = append(out, l)
		}
	}
	return out
}

// TestCron runs setup_heartbeat_cron.sh against real cron. It builds the
// binary once; each subtest has its own throwaway user and runs in
// parallel with the others.
func TestCron(t *testing.T) {
	f := newCronFixture(t)

	t.Run("install twice keeps every other line", func(t *testing.T) {
		t.Parallel()
		u := newCronUser(t)
		u.giveKey(t)
		u.setCrontab(t, otherLines)

		r := f.script(t, u, nil).mustSucceed(t, "install")
		if !strings.Contains(r.stderr, "installed 2 lines in the crontab of "+u.name) {
			t.Errorf("install said: %s", r.stderr)
		}
		first := u.crontab(t)
		log := filepath.Join(u.home, ".local/state/heartbeat/probe.log")
		bin := regexp.QuoteMeta("'" + f.binary + "'")
		lineRE := regexp.MustCompile(`^\* \* \* \* \* ` + bin + ` probe-ssh >>'` + regexp.QuoteMeta(log) + `' 2>&1 ` + regexp.QuoteMeta(doctor.CronMarker) + `$`)
		managed := managedLines(first)
		if len(managed) != 2 || !lineRE.MatchString(managed[0]) ||
			managed[1] != strings.Replace(managed[0], "* * * * * ", "* * * * * sleep 30 && ", 1) {
			t.Errorf("installed lines:\n%s", strings.Join(managed, "\n"))
		}
		if want := otherLines + managed[0] + "\n" + managed[1] + "\n"; first != want {
			t.Errorf("crontab after install:\n%q\nwant:\n%q", first, want)
		}
		if fi, err := os.Stat(log); err != nil || fi.Mode().Perm()&0o007 != 0 || fileOwner(fi) != u.uid {
			t.Errorf("log file %s: %v %v, want owned by %s and closed to others", log, fi, err, u.name)
		}

		r = f.script(t, u, nil).mustSucceed(t, "install again")
		if !strings.Contains(r.stderr, "replaced 2 line(s)") {
			t.Errorf("second install said: %s", r.stderr)
		}
		if again := u.crontab(t); again != first {
			t.Errorf("installing twice changed the crontab:\n%q\nthen:\n%q", first, again)
		}
	})

	t.Run("a user installs for themselves", func(t *testing.T) {
		t.Parallel()
		u := newCronUser(t)
		u.giveKey(t)
		u.setCrontab(t, otherLines)
		// The user runs their own copy: the checkout may be closed to them.
		own := u.writeFile(t, "setup_heartbeat_cron.sh", mustRead(t, script), 0o755)
		if out, err := u.run(t, "", "/bin/bash", own, "--binary", f.binary); err != nil {
			t.Fatalf("install as %s: %v\n%s", u.name, err, out)
		}
		tab := u.crontab(t)
		if managed := managedLines(tab); len(managed) != 2 || tab != otherLines+managed[0]+"\n"+managed[1]+"\n" {
			t.Errorf("crontab after a self-install:\n%s", tab)
		}
		out, err := u.run(t, "", "/bin/bash", own, "--user", "root", "--binary", f.binary)
		if err == nil || !strings.Contains(out, "only root can install for another user") {
			t.Errorf("--user root as %s: %v\n%s", u.name, err, out)
		}
		if out, err := u.run(t, "", "/bin/bash", own, "--remove"); err != nil || u.crontab(t) != otherLines {
			t.Errorf("--remove as %s: %v\n%s", u.name, err, out)
		}
	})

	t.Run("dry run changes nothing", func(t *testing.T) {
		t.Parallel()
		u := newCronUser(t)
		u.giveKey(t)
		u.setCrontab(t, otherLines)

		dry := f.script(t, u, nil, "--dry-run", "--summary").mustSucceed(t, "--dry-run")
		if got := u.crontab(t); got != otherLines {
			t.Errorf("--dry-run changed the crontab:\n%q", got)
		}
		if _, err := os.Stat(filepath.Join(u.home, ".local/state/heartbeat")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("--dry-run created the log directory (%v)", err)
		}
		if !strings.Contains(dry.stderr, "not installed") {
			t.Errorf("--dry-run did not say it installed nothing: %s", dry.stderr)
		}
		f.script(t, u, nil, "--summary").mustSucceed(t, "install")
		if got := u.crontab(t); got != dry.stdout {
			t.Errorf("--dry-run printed:\n%s\nbut install made:\n%s", dry.stdout, got)
		}
		if !strings.Contains(dry.stdout, "probe-ssh --summary >>") {
			t.Errorf("--summary not passed on:\n%s", dry.stdout)
		}
		f.script(t, u, nil, "--remove", "--dry-run").mustSucceed(t, "--remove --dry-run")
		if got := u.crontab(t); got != dry.stdout {
			t.Errorf("--remove --dry-run changed the crontab:\n%s", got)
		}
	})

	t.Run("remove takes out only its own lines", func(t *testing.T) {
		t.Parallel()
		u := newCronUser(t)
		u.giveKey(t)
		u.setCrontab(t, otherLines)
		f.script(t, u, nil).mustSucceed(t, "install")

		r := f.script(t, u, nil, "--remove").mustSucceed(t, "--remove")
		if got := u.crontab(t); got != otherLines {
			t.Errorf("after --remove:\n%q\nwant:\n%q", got, otherLines)
		}
		if !strings.Contains(r.stderr, "removed 2 line(s)") {
			t.Errorf("--remove said: %s", r.stderr)
		}
		r = f.script(t, u, nil, "--remove").mustSucceed(t, "--remove again")
		if !strings.Contains(r.stderr, "nothing to remove") || u.crontab(t) != otherLines {
			t.Errorf("second --remove said %s", r.stderr)
		}

		// A crontab that held only our lines goes away altogether.
		exec.Command("crontab", "-u", u.name, "-r").Run()
		f.script(t, u, nil).mustSucceed(t, "install into an empty crontab")
		if n := len(managedLines(u.crontab(t))); n != 2 {
			t.Errorf("%d managed lines, want 2", n)
		}
		f.script(t, u, nil, "--remove").mustSucceed(t, "--remove")
		if got := u.crontab(t); got != "" {
			t.Errorf("after --remove the crontab still holds %q", got)
		}
	})

	t.Run("passwords never reach the crontab", func(t *testing.T) {
		t.Parallel()
		u := newCronUser(t)
		u.giveKey(t)
		dbURL, err := url.Parse(pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := net.SplitHostPort(dbURL.Host); err != nil || dbURL.Query().Get("host") != "" {
			t.Skipf("skipped: the test Postgres is not on TCP (%s), so a throwaway user cannot reach it", dbURL.Redacted())
		}
		password, ok := dbURL.User.Password()
		if !ok {
			// Trust auth (CI, dev boxes) takes any password.
			password = "topsecret-" + u.name
			dbURL.User = url.UserPassword(dbURL.User.Username(), password)
		}
		withPassword := dbURL.String()
		if out, err := exec.Command(f.binary, "--db", withPassword, "migrate").CombinedOutput(); err != nil {
			t.Fatalf("migrate: %v\n%s", err, out)
		}
		envFile := filepath.Join(u.home, ".config/heartbeat/cron.env")
		noLeak := func(what string, r scriptResult) {
			t.Helper()
			if tab := u.crontab(t); strings.Contains(tab, password) {
				t.Errorf("%s: the password is in the crontab:\n%s", what, tab)
			}
			if strings.Contains(r.stdout+r.stderr, password) {
				t.Errorf("%s: the script printed the password:\n%s%s", what, r.stdout, r.stderr)
			}
			fi, err := os.Stat(envFile)
			if err != nil {
				t.Fatalf("%s: env file: %v", what, err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: env file mode %v", what, fi.Mode())
			}
			if owner := fileOwner(fi); owner != u.uid {
				t.Errorf("%s: env file owned by uid %d, want %d", what, owner, u.uid)
			}
			if body, _ := os.ReadFile(envFile); !strings.Contains(string(body), password) {
				t.Errorf("%s: env file lacks the password:\n%s", what, body)
			}
			if tab := u.crontab(t); !strings.Contains(tab, "* * * * * . '"+envFile+"' && ") {
				t.Errorf("%s: the cron lines do not source %s:\n%s", what, envFile, tab)
			}
		}

		r := f.script(t, u, nil, "--db", withPassword).mustSucceed(t, "install with --db")
		noLeak("--db URL", r)
		dry := f.script(t, u, nil, "--db", withPassword, "--dry-run").mustSucceed(t, "--dry-run")
		if strings.Contains(dry.stdout+dry.stderr, password) || !strings.Contains(dry.stderr, "HEARTBEAT_DB (values not shown)") {
			t.Errorf("--dry-run with a password printed:\n%s%s", dry.stdout, dry.stderr)
		}

		host, port, _ := net.SplitHostPort(dbURL.Host)
		pgVars := []string{"POSTGRES_HOST=" + host, "POSTGRES_PORT=" + port, "POSTGRES_DB=" + strings.TrimPrefix(dbURL.Path, "/"),
			"POSTGRES_USER=" + dbURL.User.Username(), "POSTGRES_PASSWORD=" + password}
		r = f.script(t, u, pgVars).mustSucceed(t, "install with POSTGRES_*")
		noLeak("POSTGRES_*", r)
		if tab := u.crontab(t); !strings.Contains(tab, "POSTGRES_HOST='"+host+"' POSTGRES_PORT='"+port+"'") || len(managedLines(tab)) != 2 {
			t.Errorf("POSTGRES_* install: the crontab should name host and port:\n%s", tab)
		}

		// The lines really work with the env file: doctor --quick as cron.
		line := cronCommand(t, managedLines(u.crontab(t))[0])
		check := strings.Replace(line, "probe-ssh", "doctor --quick", 1)
		if out, err := u.run(t, "", "/bin/sh", "-c", check); err != nil {
			t.Errorf("doctor --quick through the cron line's environment: %v\n%s", err, out)
		}

		// A store without secrets needs no env file: it is removed.
		f.script(t, u, nil).mustSucceed(t, "install with the default store")
		if _, err := os.Stat(envFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the env file outlived the secret (%v)", err)
		}
	})

	t.Run("refuses when the store does not answer", func(t *testing.T) {
		t.Parallel()
		u := newCronUser(t)
		u.giveKey(t)
		u.setCrontab(t, otherLines)
		down := fmt.Sprintf("postgres://hb:topsecret@127.0.0.1:%d/heartbeat", sshtest.ClosedPort(t))

		r := f.script(t, u, nil, "--db", down)
		if r.code != 1 || !strings.Contains(r.stderr, "refusing to install") || !strings.Contains(r.stderr, "cannot reach postgres store postgres://hb:xxxxx@127.0.0.1") {
			t.Errorf("install against a dead store: exit %d\n%s", r.code, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, "topsecret") {
			t.Errorf("refusal printed the password:\n%s", r.stderr)
		}
		if got := u.crontab(t); got != otherLines {
			t.Errorf("a refused install changed the crontab:\n%s", got)
		}
		if _, err := os.Stat(filepath.Join(u.home, ".config/heartbeat/cron.env")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused install wrote the env file (%v)", err)
		}

		// No key either: refused with the key's reason.
		os.Remove(filepath.Join(u.home, ".ssh/id_ed25519"))
		r = f.script(t, u, nil)
		if r.code != 1 || !strings.Contains(r.stderr, "no SSH credentials found") {
			t.Errorf("install without a key: exit %d\n%s", r.code, r.stderr)
		}
	})

	t.Run("needs crontab, a cron daemon and a real user", func(t *testing.T) {
		t.Parallel()
		u := newCronUser(t)
		u.giveKey(t)
		u.setCrontab(t, otherLines)
		tools := []string{"id", "getent", "cut", "mktemp", "rm", "grep", "readlink", "install", "cat", "head",
			"runuser", "env", "dirname", "mkdir", "chmod", "chown", "sh"}

		noCrontab := toolDir(t, tools, nil)
		r := runScript(t, []string{"PATH=" + noCrontab}, "--user", u.name, "--binary", f.binary)
		if r.code != 1 || !strings.Contains(r.stderr, "crontab command is not installed") || !strings.Contains(r.stderr, "apt-get install cron") {
			t.Errorf("without crontab: exit %d\n%s", r.code, r.stderr)
		}

		noDaemon := toolDir(t, append(tools, "crontab"), map[string]string{"pgrep": "exit 1"})
		r = runScript(t, []string{"PATH=" + noDaemon}, "--user", u.name, "--binary", f.binary)
		if r.code != 1 || !strings.Contains(r.stderr, "cron daemon is not running") || !strings.Contains(r.stderr, "package cron") {
			t.Errorf("without a cron daemon: exit %d\n%s", r.code, r.stderr)
		}
		if got := u.crontab(t); got != otherLines {
			t.Errorf("a refused install changed the crontab:\n%s", got)
		}

		r = runScript(t, []string{"PATH=" + rootPath}, "--user", "no-such-user-hb", "--binary", f.binary)
		if r.code != 1 || !strings.Contains(r.stderr, "no such user: no-such-user-hb") {
			t.Errorf("unknown --user: exit %d\n%s", r.code, r.stderr)
		}
		notExecutable := filepath.Join(t.TempDir(), "heartbeat")
		os.WriteFile(notExecutable, []byte("#!/bin/sh\n"), 0o644)
		r = runScript(t, []string{"PATH=" + rootPath}, "--user", u.name, "--binary", notExecutable)
		if r.code != 1 || !strings.Contains(r.stderr, "is not an executable file") {
			t.Errorf("bad --binary: exit %d\n%s", r.code, r.stderr)
		}
	})

	t.Run("an installed line records a heartbeat when run as cron runs it", func(t *testing.T) {
		t.Parallel()
		u := newCronUser(t)
		key := u.giveKey(t)
		fleet, err := sshtest.Start(context.Background(), sshtest.Config{
			Groups:         []sshtest.Group{{Mode: sshtest.ModeOK, Count: 2}},
			AuthorizedKeys: []ssh.PublicKey{key.PublicKey()},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fleet.Close() })
		var csv bytes.Buffer
		if err := fleet.CSV(&csv); err != nil {
			t.Fatal(err)
		}
		// The default store, in the user's home, created by the user.
		if out, err := u.run(t, csv.String(), f.binary, "servers", "import", "-"); err != nil {
			t.Fatalf("servers import: %v\n%s", err, out)
		}
		f.script(t, u, nil, "--summary").mustSucceed(t, "install")

		managed := managedLines(u.crontab(t))
		if len(managed) != 2 {
			t.Fatalf("managed lines: %q", managed)
		}
		if out, err := u.run(t, "", "/bin/sh", "-c", cronCommand(t, managed[0])); err != nil {
			t.Fatalf("the cron line failed: %v\n%s", err, out)
		}
		log, err := os.ReadFile(filepath.Join(u.home, ".local/state/heartbeat/probe.log"))
		if err != nil || !strings.Contains(string(log), "probed 2 servers in ") || !strings.Contains(string(log), "2 answered") {
			t.Errorf("probe log after one cron line: %v\n%s", err, log)
		}
		out, _ := u.run(t, "", f.binary, "status", "--json")
		var rows []struct {
			Name   string `json:"name"`
			Status string `json:"status"`
			Source string `json:"source"`
		}
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		if len(rows) != 2 {
			t.Fatalf("status rows: %+v", rows)
		}
		for _, row := range rows {
			if row.Status != "ONLINE" || row.Source != "ssh" {
				t.Errorf("%s after the cron line ran: %s from %q, want ONLINE from ssh", row.Name, row.Status, row.Source)
			}
		}
	})
}

// cronDaemonRunning looks for a process named cron or crond in /proc (pgrep
// comes with procps, which minimal systems lack).
func cronDaemonRunning() bool {
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, c := range comms {
		b, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		if name := strings.TrimSpace(string(b)); name == "cron" || name == "crond" {
			return true
		}
	}
	return false
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fileOwner is the uid owning a file.
func fileOwner(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// cronCommand turns a crontab line into what cron hands to /bin/sh: the
// schedule taken off and \% turned back into %. (The marker is a comment
// the shell ignores.)
func cronCommand(t *testing.T, line string) string {
	t.Helper()
	fields := strings.SplitN(line, " ", 6)
	if len(fields) != 6 {
		t.Fatalf("not a crontab line: %q", line)
	}
	return strings.ReplaceAll(fields[5], `\%`, "%")
}

// toolDir makes a directory to use as PATH holding links to the named
// tools and stand-in scripts (name → /bin/sh body).
func toolDir(t *testing.T, tools []string, fakes map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range tools {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := os.Symlink(p, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range fakes {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSystemdUnitsVerify(t *testing.T) {
	t.Parallel()
	units := map[string][]string{
		"heartbeat-probe.service": {"Type=oneshot", "ExecStart=/usr/local/bin/heartbeat probe-ssh --summary", "User=heartbeat",
			"EnvironmentFile=-/etc/heartbeat/heartbeat.env", "ProtectSystem=strict", "NoNewPrivileges=yes", "StateDirectory=heartbeat"},
		"heartbeat-probe.timer": {"OnCalendar=*:*:00/30", "AccuracySec=1s", "Persistent=false", "WantedBy=timers.target"},
		"heartbeat-api.service": {"ExecStart=/usr/local/bin/heartbeat serve-api --listen 127.0.0.1:8080", "Restart=on-failure",
			"User=heartbeat", "StateDirectory=heartbeat", "EnvironmentFile=-/etc/heartbeat/heartbeat.env",
			"ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes", "PrivateTmp=yes"},
	}
	dir := t.TempDir()
	var paths []string
	for name, want := range units {
		body, err := os.ReadFile(filepath.Join("systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(w) + `$`).Match(body) {
				t.Errorf("%s lacks the line %q", name, w)
			}
		}
		// verify insists that ExecStart exists; point it at a real binary.
		body = bytes.ReplaceAll(body, []byte("/usr/local/bin/heartbeat"), []byte("/bin/true"))
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	analyze := requireTool(t, "systemd-analyze", "systemd")
	out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	// Unknown keys are only warnings (exit 0), so any output is a failure.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestLogrotateSnippetRotates(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("logrotate/heartbeat")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"/.local/state/heartbeat/probe.log", "copytruncate", "size 10M", "rotate 5"} {
		if !bytes.Contains(body, []byte(w)) {
			t.Errorf("the logrotate snippet lacks %q", w)
		}
	}
	logrotate := requireTool(t, "logrotate", "logrotate")
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "probe.log")
	if err := os.WriteFile(log, bytes.Repeat([]byte("x"), 11<<20), 0o640); err != nil {
		t.Fatal(err)
	}
	conf := regexp.MustCompile(`(?m)^/\S+.*\{$`).ReplaceAll(body, []byte(log+" {"))
	confPath := filepath.Join(dir, "heartbeat.conf")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(logrotate, "--state", filepath.Join(dir, "state"), confPath).CombinedOutput(); err != nil {
		t.Fatalf("logrotate: %v\n%s", err, out)
	}
	if fi, err := os.Stat(log); err != nil || fi.Size() != 0 {
		t.Errorf("after rotation the log is %v (%v), want truncated in place", fi, err)
	}
	if fi, err := os.Stat(log + ".1"); err != nil || fi.Size() != 11<<20 {
		t.Errorf("rotated copy: %v (%v)", fi, err)
	}
}

// pushAPI is a real serve-api (the built binary, over loopback) with one
// server registered for pushes and its token.
type pushAPI struct {
	url, db, token string
	serverID       string
}

// startPushAPI registers a server in a fresh SQLite store, issues its token
// and runs serve-api on a free loopback port until the test ends.
func (f *cronFixture) startPushAPI(t *testing.T) *pushAPI {
	t.Helper()
	db := "sqlite:" + filepath.Join(t.TempDir(), "hb.db")
	if out, err := exec.Command(f.binary, "--db", db, "servers", "add", "agent1", "--host", "192.0.2.1").CombinedOutput(); err != nil {
		t.Fatalf("servers add: %v\n%s", err, out)
	}
	var tokenOut, errb bytes.Buffer
	tok := exec.Command(f.binary, "--db", db, "servers", "token", "agent1")
	tok.Stdout, tok.Stderr = &tokenOut, &errb
	if err := tok.Run(); err != nil {
		t.Fatalf("servers token: %v\n%s", err, errb.String())
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	srv := exec.CommandContext(ctx, f.binary, "--db", db, "serve-api", "--listen", addr)
	var srvLog bytes.Buffer
	srv.Stdout, srv.Stderr = &srvLog, &srvLog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		srv.Wait()
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve-api did not listen on %s:\n%s", addr, srvLog.String())
		}
	}
	return &pushAPI{url: "http://" + addr, db: db, token: strings.TrimSpace(tokenOut.String()), serverID: "1"}
}

// lastHeartbeat is agent1's last heartbeat as the store has it ("" if none).
func (a *pushAPI) lastHeartbeat(t *testing.T, binary string) string {
	t.Helper()
	out, err := exec.Command(binary, "--db", a.db, "status", "--json").Output()
	if err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	var rows []struct {
		Name          string  `json:"name"`
		LastHeartbeat *string `json:"last_heartbeat"`
	}
	if err := json.Unmarshal(out, &rows); err != nil || len(rows) != 1 {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if rows[0].LastHeartbeat == nil {
		return ""
	}
	return *rows[0].LastHeartbeat
}

// pushLines returns the crontab lines carrying the push marker.
func pushLines(tab string) []string {
	var out []string
	for _, l := range strings.Split(tab, "\n") {
		if strings.Contains(l, pushMarker) {
			out = append(out, l)
		}
	}
	return out
}

const pushMarker = "# heartbeat-push: managed by setup_heartbeat_cron.sh"

// runScriptStdin is runScript with standard input.
func runScriptStdin(t *testing.T, stdin string, env []string, args ...string) scriptResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/bash", append([]string{script}, args...)...)
	cmd.Env = append([]string{"HOME=/root", "LOGNAME=root", "USER=root", "PATH=" + rootPath}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", script, err)
	}
	return scriptResult{out.String(), errb.String(), code}
}

// TestPush runs setup_heartbeat_cron.sh --push against real cron, a real
// serve-api, and (for the systemd flavour) systemd-analyze.
func TestPush(t *testing.T) {
	f := newCronFixture(t)

	t.Run("cron flavour: installed once, pushes, leaves the probe lines, removable", func(t *testing.T) {
		t.Parallel()
		a := f.startPushAPI(t)
		u := newCronUser(t)
		u.giveKey(t)
		u.setCrontab(t, otherLines)
		f.script(t, u, nil).mustSucceed(t, "install the probe lines")
		probe := managedLines(u.crontab(t))
		if len(probe) != 2 {
			t.Fatalf("probe lines: %q", probe)
		}
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte(a.token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"--push", "--cron", "--url", a.url, "--server-id", a.serverID, "--token-file", tokenFile}
		envFile := filepath.Join(u.home, ".config/heartbeat/push.env")
		noLeak := func(what string, r scriptResult) {
			t.Helper()
			if strings.Contains(r.stdout+r.stderr, a.token) {
				t.Errorf("%s: the script printed the token:\n%s%s", what, r.stdout, r.stderr)
			}
			if tab := u.crontab(t); strings.Contains(tab, a.token) {
				t.Errorf("%s: the token is in the crontab:\n%s", what, tab)
			}
			fi, err := os.Stat(envFile)
			if err != nil {
				t.Fatalf("%s: env file: %v", what, err)
			}
			if fi.Mode().Perm() != 0o600 || fileOwner(fi) != u.uid {
				t.Errorf("%s: env file mode %v owner %d, want 0600 owned by %d", what, fi.Mode(), fileOwner(fi), u.uid)
			}
			if body, _ := os.ReadFile(envFile); !strings.Contains(string(body), "HEARTBEAT_TOKEN='"+a.token+"'") ||
				!strings.Contains(string(body), "HEARTBEAT_API_URL='"+a.url+"'") || !strings.Contains(string(body), "STACKSENSE_SERVER_ID='1'") {
				t.Errorf("%s: env file lacks the settings:\n%s", what, body)
			}
		}

		r := f.script(t, u, nil, args...).mustSucceed(t, "install --push")
		if !strings.Contains(r.stderr, "installed 2 push lines in the crontab of "+u.name) || !strings.Contains(r.stderr, "test push") {
			t.Errorf("install --push said: %s", r.stderr)
		}
		noLeak("install", r)
		first := u.crontab(t)
		push := pushLines(first)
		log := filepath.Join(u.home, ".local/state/heartbeat/push.log")
		lineRE := regexp.MustCompile(`^\* \* \* \* \* set -a && \. '` + regexp.QuoteMeta(envFile) + `' && set \+a && '` +
			regexp.QuoteMeta(f.binary) + `' push >>'` + regexp.QuoteMeta(log) + `' 2>&1 ` + regexp.QuoteMeta(pushMarker) + `$`)
		if len(push) != 2 || !lineRE.MatchString(push[0]) ||
			push[1] != strings.Replace(push[0], "* * * * * ", "* * * * * sleep 30 && ", 1) {
			t.Errorf("push lines:\n%s", strings.Join(push, "\n"))
		}
		if want := otherLines + probe[0] + "\n" + probe[1] + "\n" + push[0] + "\n" + push[1] + "\n"; first != want {
			t.Errorf("crontab after install --push:\n%q\nwant:\n%q", first, want)
		}

		r = f.script(t, u, nil, args...).mustSucceed(t, "install --push again")
		if !strings.Contains(r.stderr, "replaced 2 push line(s)") {
			t.Errorf("second install said: %s", r.stderr)
		}
		if again := u.crontab(t); again != first {
			t.Errorf("installing twice changed the crontab:\n%q\nthen:\n%q", first, again)
		}
		// Installing the probe lines again leaves the push lines alone (the
		// probe lines move to the end, as any re-install appends them).
		f.script(t, u, nil).mustSucceed(t, "install the probe lines again")
		if again := u.crontab(t); again != otherLines+push[0]+"\n"+push[1]+"\n"+probe[0]+"\n"+probe[1]+"\n" {
			t.Errorf("re-installing the probe lines changed the push lines:\n%q\nthen:\n%q", first, again)
		}

		// The line, run as cron runs it, stores a new heartbeat.
		before := a.lastHeartbeat(t, f.binary)
		if before == "" {
			t.Fatal("the install's test push stored no heartbeat")
		}
		time.Sleep(1100 * time.Millisecond)
		if out, err := u.run(t, "", "/bin/sh", "-c", cronCommand(t, push[0])); err != nil {
			t.Fatalf("the push line failed: %v\n%s", err, out)
		}
		if after := a.lastHeartbeat(t, f.binary); after == before {
			t.Errorf("the push line stored no new heartbeat (last %s)", after)
		}
		if body, err := os.ReadFile(log); err != nil || len(body) != 0 {
			t.Errorf("push log after a good push: %v %q", err, body)
		}

		// Switching flavour takes the other one out: never two pushers.
		unitDir := t.TempDir()
		sysEnv := []string{"HEARTBEAT_SYSTEMD_DIR=" + unitDir, "HEARTBEAT_SYSTEMCTL=true"}
		sysEnvFile := filepath.Join(t.TempDir(), "push.env")
		sysArgs := append([]string{"--systemd", "--env-file", sysEnvFile}, args[2:]...)
		f.script(t, u, sysEnv, append([]string{"--push"}, sysArgs...)...).mustSucceed(t, "install --push --systemd --user")
		if tab := u.crontab(t); len(pushLines(tab)) != 0 || len(managedLines(tab)) != 2 {
			t.Errorf("the systemd flavour left the push lines (or took the probe lines):\n%s", tab)
		}
		if _, err := os.Stat(envFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the systemd flavour left the cron lines' env file with the token (%v)", err)
		}
		if body := string(mustRead(t, filepath.Join(unitDir, "heartbeat-push.service"))); !strings.Contains(body, "\nUser="+u.name+"\n") {
			t.Errorf("--user %s: the service does not run as them:\n%s", u.name, body)
		}
		f.script(t, u, sysEnv, args...).mustSucceed(t, "back to --cron")
		if entries, _ := os.ReadDir(unitDir); len(entries) != 0 || len(pushLines(u.crontab(t))) != 2 {
			t.Errorf("back to cron: %d unit files left, crontab:\n%s", len(entries), u.crontab(t))
		}
		if _, err := os.Stat(sysEnvFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("back to cron: the service's env file is left with the token (%v)", err)
		}
		noLeak("back to cron", scriptResult{})

		r = f.script(t, u, nil, "--remove", "--push").mustSucceed(t, "--remove --push")
		if got, want := u.crontab(t), otherLines+probe[0]+"\n"+probe[1]+"\n"; got != want {
			t.Errorf("after --remove --push:\n%q\nwant:\n%q", got, want)
		}
		if !strings.Contains(r.stderr, "removed 2 push line(s)") {
			t.Errorf("--remove --push said: %s", r.stderr)
		}
		if _, err := os.Stat(envFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("--remove --push left the env file (%v)", err)
		}
	})

	t.Run("cron flavour refuses a token the API rejects", func(t *testing.T) {
		t.Parallel()
		a := f.startPushAPI(t)
		u := newCronUser(t)
		u.setCrontab(t, otherLines)
		bad := "not-the-token-" + u.name
		r := runScriptStdin(t, bad+"\n", nil, "--user", u.name, "--binary", f.binary,
			"--push", "--cron", "--url", a.url, "--server-id", a.serverID, "--token-file", "-")
		if r.code != 1 || !strings.Contains(r.stderr, "refusing to install") || strings.Contains(r.stderr, bad) {
			t.Errorf("install with a wrong token: exit %d\n%s", r.code, r.stderr)
		}
		if got := u.crontab(t); got != otherLines {
			t.Errorf("a refused install changed the crontab:\n%s", got)
		}
		if _, err := os.Stat(filepath.Join(u.home, ".config/heartbeat/push.env")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused install wrote the env file (%v)", err)
		}
		r = runScriptStdin(t, "", []string{"HEARTBEAT_TOKEN=" + a.token}, "--user", u.name, "--binary", f.binary, "--push", "--cron", "--url", a.url)
		if r.code != 1 || !strings.Contains(r.stderr, "no server id") {
			t.Errorf("install without a server id: exit %d\n%s", r.code, r.stderr)
		}
		r = runScriptStdin(t, "", nil, "--user", u.name, "--binary", f.binary, "--push", "--db", "sqlite:/x.db")
		if r.code != 1 || !strings.Contains(r.stderr, "--db is for the probe lines") {
			t.Errorf("--push --db: exit %d\n%s", r.code, r.stderr)
		}
	})

	t.Run("dry run picks systemd where it runs, else cron, and changes nothing", func(t *testing.T) {
		t.Parallel()
		u := newCronUser(t)
		u.setCrontab(t, otherLines)
		unitDir := t.TempDir()
		token := "dry-run-token-" + u.name
		r := runScriptStdin(t, token, []string{"HEARTBEAT_SYSTEMD_DIR=" + unitDir, "HEARTBEAT_SYSTEMCTL=false"},
			"--user", u.name, "--binary", f.binary, "--push", "--dry-run", "--url", "http://127.0.0.1:1", "--server-id", "7", "--token-file", "-").
			mustSucceed(t, "--push --dry-run")
		_, err := os.Stat("/run/systemd/system")
		systemd := err == nil
		if got := strings.Contains(r.stdout, "### "+filepath.Join(unitDir, "heartbeat-push.service")); got != systemd {
			t.Errorf("systemd running = %v, but the dry run printed:\n%s", systemd, r.stdout)
		}
		if got := len(pushLines(r.stdout)) == 2; got == systemd {
			t.Errorf("systemd running = %v, but the dry run printed:\n%s", systemd, r.stdout)
		}
		if strings.Contains(r.stdout+r.stderr, token) || !strings.Contains(r.stderr, "values not shown") {
			t.Errorf("the dry run printed the token or did not say it hid it:\n%s%s", r.stdout, r.stderr)
		}
		if entries, _ := os.ReadDir(unitDir); len(entries) != 0 || u.crontab(t) != otherLines {
			t.Errorf("the dry run wrote %d units or changed the crontab:\n%s", len(entries), u.crontab(t))
		}
		if _, err := os.Stat(filepath.Join(u.home, ".config/heartbeat/push.env")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the dry run wrote the env file (%v)", err)
		}
	})

	t.Run("systemd flavour writes verifiable units, token only in the env file", func(t *testing.T) {
		t.Parallel()
		a := f.startPushAPI(t)
		unitDir := t.TempDir()
		etc := t.TempDir()
		envFile := filepath.Join(etc, "heartbeat", "push.env")
		calls := filepath.Join(t.TempDir(), "systemctl.calls")
		fake := filepath.Join(t.TempDir(), "systemctl")
		if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"$*\" >>'"+calls+"'\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		env := []string{"HEARTBEAT_SYSTEMD_DIR=" + unitDir, "HEARTBEAT_SYSTEMCTL=" + fake}
		args := []string{"--binary", f.binary, "--push", "--systemd", "--url", a.url, "--server-id", a.serverID,
			"--token-file", "-", "--env-file", envFile}

		r := runScriptStdin(t, a.token+"\n", env, args...).mustSucceed(t, "install --push --systemd")
		if strings.Contains(r.stdout+r.stderr, a.token) {
			t.Errorf("the script printed the token:\n%s", r.stderr)
		}
		service := filepath.Join(unitDir, "heartbeat-push.service")
		timer := filepath.Join(unitDir, "heartbeat-push.timer")
		want := map[string][]string{
			service: {pushMarker, "Type=oneshot", "EnvironmentFile=" + envFile, "ExecStart=" + f.binary + " push", "DynamicUser=yes", "NoNewPrivileges=yes"},
			timer:   {pushMarker, "OnBootSec=30s", "OnUnitActiveSec=30s", "AccuracySec=1s", "WantedBy=timers.target"},
		}
		firstBodies := map[string]string{}
		for p, lines := range want {
			body := string(mustRead(t, p))
			firstBodies[p] = body
			for _, w := range lines {
				if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(w) + `$`).MatchString(body) {
					t.Errorf("%s lacks the line %q:\n%s", filepath.Base(p), w, body)
				}
			}
			if strings.Contains(body, a.token) {
				t.Errorf("%s holds the token", filepath.Base(p))
			}
		}
		fi, err := os.Stat(envFile)
		if err != nil || fi.Mode().Perm() != 0o600 || fileOwner(fi) != 0 {
			t.Errorf("env file: %v %v, want 0600 owned by root", fi, err)
		}
		if body := string(mustRead(t, envFile)); !strings.Contains(body, "HEARTBEAT_TOKEN='"+a.token+"'") {
			t.Errorf("env file lacks the token:\n%s", body)
		}
		if got := string(mustRead(t, calls)); got != "daemon-reload\nenable --now heartbeat-push.timer\n" {
			t.Errorf("systemctl calls:\n%s", got)
		}

		// The units as systemd reads them.
		if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
			if out, err := exec.Command(analyze, "verify", service, timer).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("systemd-analyze verify: %v\n%s", err, out)
			}
		} else if os.Getenv("CI") == "true" {
			t.Fatal("prerequisite missing under CI=true: systemd-analyze (Debian package systemd)")
		} else {
			// The lines checked above are all this test can say without it.
			t.Log("systemd-analyze not found (Debian package systemd): units checked as text only")
		}
		// And the env file as systemd's EnvironmentFile= and sh read it: the
		// service's command, with the file's variables only, pushes.
		before := a.lastHeartbeat(t, f.binary)
		time.Sleep(1100 * time.Millisecond)
		sh := "set -a && . '" + envFile + "' && set +a && exec '" + f.binary + "' push"
		if out, err := exec.Command("env", "-i", "PATH=/usr/bin:/bin", "/bin/sh", "-c", sh).CombinedOutput(); err != nil {
			t.Errorf("push with the env file: %v\n%s", err, out)
		}
		if after := a.lastHeartbeat(t, f.binary); after == before {
			t.Errorf("no new heartbeat from the env file's settings")
		}

		r = runScriptStdin(t, a.token, env, args...).mustSucceed(t, "install --push --systemd again")
		if !strings.Contains(r.stderr, "replaced") {
			t.Errorf("second install said: %s", r.stderr)
		}
		entries, _ := os.ReadDir(unitDir)
		if len(entries) != 2 {
			t.Errorf("unit dir after two installs holds %d files", len(entries))
		}
		for p, body := range firstBodies {
			if again := string(mustRead(t, p)); again != body {
				t.Errorf("installing twice changed %s:\n%s\nthen:\n%s", filepath.Base(p), body, again)
			}
		}

		os.WriteFile(calls, nil, 0o644)
		runScriptStdin(t, "", env, "--push", "--remove", "--env-file", envFile).mustSucceed(t, "--remove --push")
		if entries, _ := os.ReadDir(unitDir); len(entries) != 0 {
			t.Errorf("--remove --push left %d unit files", len(entries))
		}
		if _, err := os.Stat(envFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("--remove --push left the env file (%v)", err)
		}
		if got := string(mustRead(t, calls)); got != "disable --now heartbeat-push.timer\ndaemon-reload\n" {
			t.Errorf("systemctl calls on remove:\n%s", got)
		}
	})
}
