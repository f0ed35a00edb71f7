package cli

import (
	"errors"
	"fmt"
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
