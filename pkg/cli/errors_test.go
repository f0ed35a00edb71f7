package cli

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// waitingFor is the "waiting for" part of a --timeout message: the
// operation the error names, without the context package's words.
func TestWaitingFor(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("read status: %w", errors.New("timeout: context deadline exceeded")), "read status"},
		{fmt.Errorf("list servers: %w", context.DeadlineExceeded), "list servers"},
		{context.DeadlineExceeded, "the store"},
		{errors.New("cannot reach postgres store db:5432: no answer"), "cannot reach postgres store db:5432: no answer"},
	}
	for _, tt := range tests {
		if got := waitingFor(tt.err); got != tt.want {
			t.Errorf("waitingFor(%q) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// A deadline keeps the command's own exit code; a signal's code is
// 128+signal whatever the error.
func TestDeadlineAndInterruptCodes(t *testing.T) {
	err := &deadlineError{command: "status", limit: 10 * time.Second, err: withCode(3, errors.New("read status: context deadline exceeded"))}
	if got := ExitCode(err); got != 3 {
		t.Errorf("ExitCode(status deadline) = %d, want 3", got)
	}
	if got, want := err.Error(), "status: no answer within 10s (--timeout), waiting for: read status"; got != want {
		t.Errorf("deadline message = %q, want %q", got, want)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	if _, _, ok := interruptCode(ctx); ok {
		t.Errorf("interruptCode before cancellation reports an interrupt")
	}
	cancel(Interrupted(syscall.SIGTERM))
	if code, ie, ok := interruptCode(ctx); !ok || code != 143 || ie.Error() != "interrupted by SIGTERM" {
		t.Errorf("interruptCode after SIGTERM = %d, %v, %v; want 143", code, ie, ok)
	}
}
