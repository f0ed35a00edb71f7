package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The cron lines append probe-ssh's stdout and stderr to a log file
// (`>> probe.log 2>&1`): every line there must start with its RFC 3339 UTC
// time so `tail` of the log tells when. The real binary, run by sh with
// the cron line's redirection, because only a real process has a file as
// its stdout.
func TestProbeLogLinesStartWithTime(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "heartbeat")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	key := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	log := filepath.Join(dir, "probe.log")
	sh := func(cmdline string, extraEnv ...string) string {
		t.Helper()
		cmd := exec.Command("/bin/sh", "-c", cmdline)
		cmd.Env = append([]string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "HEARTBEAT_DB=" + filepath.Join(dir, "hb.db"), "SSH_PRIVATE_KEY_PATH=" + key}, extraEnv...)
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	q := "'" + bin + "'"
	// Port 1 on loopback refuses: a failed probe, as --verbose prints it.
	sh(q + " servers add web1 --host 127.0.0.1 --port 1")
	sh(q + " probe-ssh --summary --timeout 2s >>'" + log + "' 2>&1")
	sh(q + " probe-ssh --verbose --timeout 2s >>'" + log + "' 2>&1")
	sh(q + " probe-ssh --db postgres://127.0.0.1:1/x >>'" + log + "' 2>&1") // the error line of cli.Main
	sh(q + " probe-ssh --summary --log-timestamps=bogus >>'" + log + "' 2>&1")
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `)
	for _, want := range []string{"probed 1 servers", "FAIL  web1", "heartbeat: cannot reach postgres store"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("log lacks %q:\n%s", want, b)
		}
	}
	for _, l := range lines[:len(lines)-1] {
		if !stamp.MatchString(l) {
			t.Errorf("log line without an RFC 3339 UTC time: %q", l)
		}
	}
	// A flag error stops the program before it knows the mode: that line
	// is the one exception, and names the fix.
	if last := lines[len(lines)-1]; !strings.Contains(last, "--log-timestamps must be auto, always or never") {
		t.Errorf("last log line %q", last)
	}

	// A pipe (a script, cron mail) and --log-timestamps=never stay as they were; --json is never stamped.
	for _, cmdline := range []string{
		q + " probe-ssh --summary --timeout 2s 2>&1 | cat",
		q + " probe-ssh --summary --timeout 2s --log-timestamps never >'" + log + "' 2>&1; cat '" + log + "'",
	} {
		if out := sh(cmdline); !strings.HasPrefix(out, "probed 1 servers") {
			t.Errorf("%s printed %q, want no time stamp", cmdline, out)
		}
	}
	if out := sh(q+" probe-ssh --json --timeout 2s >'"+log+"' 2>&1; cat '"+log+"'", "HEARTBEAT_LOG_TIMESTAMPS=always"); !strings.HasPrefix(out, "{") {
		t.Errorf("probe-ssh --json into a file: %q, want JSON", out)
	}
	if out := sh(q+" servers list 2>&1 | cat", "HEARTBEAT_LOG_TIMESTAMPS=always"); !stamp.MatchString(out) {
		t.Errorf("HEARTBEAT_LOG_TIMESTAMPS=always: servers list printed %q, want stamped lines", out)
	}
}
