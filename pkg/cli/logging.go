package cli

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// newLogger builds the process's one structured logger on w, in format
// (text or json, already validated) at level. The root command builds it
// once into globalOptions; a command that logs more (serve-api --verbose)
// lowers the level instead of building its own. When stamped, w already
// starts every line with its time, so the text handler drops its own.
func newLogger(w io.Writer, format string, level slog.Leveler, stamped bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	if stamped {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Values of --log-timestamps.
const (
	stampAuto   = "auto"
	stampAlways = "always"
	stampNever  = "never"
)

// stampTimeFormat is RFC 3339 in UTC with milliseconds: sortable, and the
// same in every log whatever the host's zone.
const stampTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// stampWriter starts every line written through it with the time, once
// switched on: a log file appended to by cron (`>> probe.log 2>&1`) then
// tells when each line was written. Off, it passes bytes through.
type stampWriter struct {
	w   io.Writer
	now func() time.Time

	mu        sync.Mutex
	on        bool
	midLine   bool // the last byte written was not a newline
	stampNext []byte
}

func newStampWriter(w io.Writer) *stampWriter {
	return &stampWriter{w: w, now: time.Now}
}

// enable switches stamping on or off for what follows.
func (s *stampWriter) enable(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.on = on
}

func (s *stampWriter) enabled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.on
}

// Write stamps each line start in p. It reports len(p) on success, as the
// stamps are its own addition.
func (s *stampWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.on {
		if len(p) > 0 {
			s.midLine = p[len(p)-1] != '\n'
		}
		return s.w.Write(p)
	}
	var b bytes.Buffer
	stamp := s.now().UTC().Format(stampTimeFormat) + " "
	for rest := p; len(rest) > 0; {
		if !s.midLine {
			b.WriteString(stamp)
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			b.Write(rest)
			s.midLine = true
			break
		}
		b.Write(rest[:i+1])
		s.midLine = false
		rest = rest[i+1:]
	}
	if _, err := s.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// isRegularFile reports whether f is a regular file: a stream appended to
// a log, not a terminal, pipe or socket (the journal stamps its own lines).
func isRegularFile(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode().IsRegular()
}

// stampsFor decides whether a stream gets timestamps: always or never as
// asked; on auto only for probe-ssh (the command cron runs into a log
// file) writing text into a regular file.
func stampsFor(mode string, isFile bool, cmdPath string, jsonOut bool) bool {
	switch mode {
	case stampAlways:
		return !jsonOut
	case stampNever:
		return false
	}
	return isFile && !jsonOut && cmdPath == "heartbeat probe-ssh"
}
