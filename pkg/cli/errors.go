package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// Exit codes outside `status` (which uses the monitoring-plugin codes in
// pkg/status). 64 is EX_USAGE from sysexits.h.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 64
)

// exitError carries the exit code an error should end the process with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports a mistake in how the command was called: exit 64.
func usageErrorf(format string, a ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, a...)}
}

// failureCodeAnnotation, set on a command, is the exit code every failure
// of that command ends with, usage errors included: `status` is a
// monitoring plugin, for which any failure is UNKNOWN (3), never 1 or 64.
const failureCodeAnnotation = "heartbeat/failure-exit-code"

// withFailureCode marks cmd so that every failure exits with code.
func withFailureCode(cmd *cobra.Command, code int) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[failureCodeAnnotation] = strconv.Itoa(code)
	return cmd
}

// failureCode is the exit code cmd declared for all its failures, if any.
func failureCode(cmd *cobra.Command) (int, bool) {
	if cmd == nil {
		return 0, false
	}
	code, err := strconv.Atoi(cmd.Annotations[failureCodeAnnotation])
	return code, err == nil
}

// withCode attaches an exit code to err (nil stays nil).
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// silentExit ends the process with code and prints nothing more: the
// command has already said what it had to (status exits 2 when a server
// is OFFLINE, which is an answer, not an error).
type silentExit int

func (s silentExit) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// ExitCode maps an error returned by a command to the process exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var s silentExit
	if errors.As(err, &s) {
		return int(s)
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return ExitFailure
}

// IsSilent reports whether err should end the process without a message.
func IsSilent(err error) bool {
	var s silentExit
	return errors.As(err, &s)
}

// InterruptError is the cause a signal cancels the program's context with
// (see cmd/heartbeat). A command that fails because of it exits 128 plus
// the signal number, as shells report a process killed by that signal:
// 130 for SIGINT, 143 for SIGTERM, whatever the command's output flags.
type InterruptError struct{ Signal syscall.Signal }

func (e *InterruptError) Error() string {
	return "interrupted by " + unix.SignalName(e.Signal)
}

// Interrupted returns the cancellation cause for sig.
func Interrupted(sig syscall.Signal) error { return &InterruptError{Signal: sig} }

// interruptCode returns the exit code for a command that failed after ctx
// was cancelled by a signal, and false if it was not.
func interruptCode(ctx context.Context) (int, *InterruptError, bool) {
	var ie *InterruptError
	if ctx.Err() == nil || !errors.As(context.Cause(ctx), &ie) {
		return 0, nil, false
	}
	return 128 + int(ie.Signal), ie, true
}

// deadlineError is a command that ran out of its --timeout: it names the
// command, the limit and what it was waiting for, and keeps the command's
// own exit code (3 for status) by wrapping the original error.
type deadlineError struct {
	command string
	limit   time.Duration
	err     error
}

func (e *deadlineError) Error() string {
	return fmt.Sprintf("%s: no answer within %s (--timeout), waiting for: %s", e.command, e.limit, waitingFor(e.err))
}
func (e *deadlineError) Unwrap() error { return e.err }

// waitingFor is what a timed-out command was doing: the error's own words
// (each layer names its operation, "read status") without the context
// package's trailer.
func waitingFor(err error) string {
	msg := strings.TrimSuffix(strings.TrimSpace(err.Error()), context.DeadlineExceeded.Error())
	for {
		// pgx adds "timeout: " before the context's words.
		trimmed := strings.TrimSuffix(strings.TrimRight(msg, ": "), "timeout")
		if trimmed == msg {
			break
		}
		msg = trimmed
	}
	if msg == "" {
		return "the store"
	}
	return msg
}
