package probe

import (
	"bytes"
	"fmt"
	"strconv"

	"golang.org/x/crypto/ssh"
)

func runCommand(c *ssh.Client, cmd string) error {
	s, err := c.NewSession()
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	defer s.Close()
	// The command's own words are the best explanation of its failure
	// ("This account is currently not available."); keep the start of
	// each stream, bounded, for the message.
	var stdout, stderr headBuffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if err := s.Run(cmd); err != nil {
		out := firstLine(stderr.b)
		if out == "" {
			out = firstLine(stdout.b)
		}
		return &commandError{err: err, output: out}
	}
	return nil
}

// commandError is a failed --exec command with the first line it printed.
type commandError struct {
	err    error
	output string // escaped, bounded; "" if it printed nothing
}

func (e *commandError) Error() string { return e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

// headBuffer keeps the first headLimit bytes written to it and discards
// the rest, so a chatty command cannot grow the probe's memory.
type headBuffer struct{ b []byte }

const headLimit = 4096

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := headLimit - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// firstLine returns the first non-blank line of b, trimmed, at most 120
// bytes, quoted with control and non-UTF-8 bytes escaped: it comes from
// the server and ends up in stored messages and terminals.
func firstLine(b []byte) string {
	for _, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if len(line) > 120 {
			line = append(line[:117:117], "..."...)
		}
		return strconv.Quote(string(line))
	}
	return ""
}
