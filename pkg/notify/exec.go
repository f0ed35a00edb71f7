package notify

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stacksense/heartbeat/pkg/output"
)

// execPath is the PATH an exec script gets. The script does not inherit
// heartbeat's environment, which may hold the database URL and its
// password.
const execPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// maxStderr bounds what is kept of a script's standard error.
const maxStderr = 4 << 10

// execSender runs a local script for each message.
type execSender struct {
	path    string
	timeout time.Duration
}

func newExec(rawURL string, o options) (*execSender, error) {
	// "exec:" then the path as written: no shell, no arguments, no
	// percent-decoding, so what the operator typed is what runs.
	path := rawURL[len("exec:"):]
	if path == "" || !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%w: exec needs an absolute path (exec:/path/to/script), got %q", ErrBadURL, output.Escape(path))
	}
	if strings.ContainsRune(path, 0) {
		return nil, fmt.Errorf("%w: exec path contains a NUL byte", ErrBadURL)
	}
	return &execSender{path: filepath.Clean(path), timeout: o.timeout}, nil
}

// Send runs the script with the message in its environment and the JSON
// payload on standard input. The script and everything it started (its
// process group) is killed at the time limit or when ctx is done.
func (x *execSender) Send(ctx context.Context, m Message) error {
	body, err := marshalPayload(m, time.Now())
	if err != nil {
		return fmt.Errorf("encode payload: %w", err)
	}
	parent := ctx
	ctx, cancel := deadline(ctx, x.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, x.path)
	cmd.Env = execEnv(m)
	cmd.Stdin = bytes.NewReader(body)
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	// Own process group, so the kill reaches the script's children too
	// (a `sleep` in a shell script would otherwise outlive it and hold
	// its pipes open).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// If a child escaped the group and holds stderr open, stop waiting.
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if err == nil {
		return nil
	}
	script := output.Escape(x.path)
	if ctx.Err() != nil {
		return fmt.Errorf("exec %s: killed (with its process group): %w", script, stopped(parent, ctx, x.timeout))
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		msg := fmt.Sprintf("exec %s: %s", script, exitErr.ProcessState.String())
		if line := firstLine(stderr.Bytes()); line != "" {
			msg += ": " + line
		}
		return errors.New(msg)
	}
	return fmt.Errorf("exec %s: %w", script, err)
}

// execEnv is the script's whole environment: a fixed PATH and the
// message. Values are escaped like table cells (a server name cannot put
// a newline or a NUL into a variable).
func execEnv(m Message) []string {
	title, text := Text(m)
	env := []string{
		"PATH=" + execPath,
		"HEARTBEAT_PAYLOAD_VERSION=" + strconv.Itoa(PayloadVersion),
		"HEARTBEAT_IDEMPOTENCY_KEY=" + m.Key(),
		"HEARTBEAT_EVENT_COUNT=" + strconv.Itoa(len(m.Events)),
		"HEARTBEAT_GROUPED=" + boolEnv(m.Grouped),
		"HEARTBEAT_TEST=" + boolEnv(m.Test),
		"HEARTBEAT_CHANNEL=" + output.Escape(m.Channel),
		"HEARTBEAT_SOURCE=" + output.Escape(m.Source),
		"HEARTBEAT_TITLE=" + title,
		"HEARTBEAT_MESSAGE=" + strings.ReplaceAll(text, "\x00", ""),
	}
	if len(m.Events) == 1 && !m.Grouped {
		e := m.Events[0]
		at := ""
		if !e.At.IsZero() {
			at = e.At.UTC().Format(time.RFC3339)
		}
		env = append(env,
			"HEARTBEAT_EVENT_ID="+strconv.FormatInt(e.ID, 10),
			"HEARTBEAT_EVENT_KIND="+output.Escape(e.Kind),
			"HEARTBEAT_SERVER_ID="+strconv.FormatInt(e.ServerID, 10),
			"HEARTBEAT_SERVER_NAME="+output.Escape(e.ServerName),
			"HEARTBEAT_SERVER_HOST="+output.Escape(e.Host),
			"HEARTBEAT_FROM="+output.Escape(e.From),
			"HEARTBEAT_TO="+output.Escape(e.To),
			"HEARTBEAT_AT="+at,
			"HEARTBEAT_REASON="+output.Escape(e.Reason),
			"HEARTBEAT_DOWN_FOR_SECONDS="+strconv.FormatInt(int64(e.DownFor/time.Second), 10),
		)
	}
	return env
}

func boolEnv(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// firstLine is the first non-empty line of a script's stderr, escaped and
// cut to 200 bytes.
func firstLine(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			if len(line) > maxErrorBody {
				line = line[:maxErrorBody] + "…"
			}
			return output.Escape(line)
		}
	}
	return ""
}

// limitedBuffer keeps the first maxStderr bytes written to it and discards
// the rest (a chatty script cannot fill memory).
type limitedBuffer struct{ bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxStderr - l.Len(); room > 0 {
		if len(p) > room {
			l.Buffer.Write(p[:room])
		} else {
			l.Buffer.Write(p)
		}
	}
	return len(p), nil
}
