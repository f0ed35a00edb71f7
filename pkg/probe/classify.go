package probe

import (
	"github.com/stacksense/heartbeat/pkg/failure"

	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/stacksense/heartbeat/pkg/hostkey"
)

// classify maps a probe error to a Class and a one-line message. It prefers
// typed checks (errors.As/Is) and falls back to the x/crypto/ssh error texts
// only where the library offers nothing typed; the tests pin each case
// against a real peer so a library change that alters a text shows up.
func classify(err error, ph phase, st *probeState, runCtx, probeCtx context.Context, timeout time.Duration) (failure.Class, string) {
	var hk *hostkey.Error
	if errors.As(err, &hk) {
		if hk.Kind == hostkey.KindUnknown {
			return failure.HostKeyUnknown, oneLine(hk.Error())
		}
		return failure.HostKeyMismatch, oneLine(hk.Error())
	}
	if isTimeout(err) || expired(probeCtx) != nil {
		runErr := expired(runCtx)
		switch {
		case errors.Is(runErr, context.DeadlineExceeded):
			return failure.Timeout, "cancelled at the run deadline during " + ph.String()
		case runErr != nil:
			return failure.Timeout, "run cancelled during " + ph.String()
		case ph == phaseHandshake && st.seen == 0:
			return failure.Timeout, "connected but no SSH banner within " + timeout.String()
		default:
			return failure.Timeout, "no response within " + timeout.String() + " during " + ph.String()
		}
	}
	switch ph {
	case phaseDial:
		var dnsErr *net.DNSError
		switch {
		case errors.As(err, &dnsErr):
			if dnsErr.IsNotFound {
				return failure.DNS, "cannot resolve " + dnsErr.Name + ": no such host"
			}
			return failure.DNS, oneLine("cannot resolve " + dnsErr.Name + ": " + dnsErr.Err)
		case errors.Is(err, syscall.ECONNREFUSED):
			return failure.Refused, "connection refused"
		case errors.Is(err, syscall.EHOSTUNREACH):
			return failure.Unreachable, "no route to host"
		case errors.Is(err, syscall.ENETUNREACH):
			return failure.Unreachable, "network unreachable"
		default:
			return failure.Unreachable, oneLine(trimSSH(err.Error()))
		}
	case phaseHandshake:
		if !st.sawBanner && bytes.HasPrefix(st.first[:st.nfirst], []byte("Exceeded MaxStartups")) {
			// sshd's answer past its MaxStartups limit: the server is up,
			// just refusing new unauthenticated connections for now.
			return failure.Throttled, "sshd refused the connection: Exceeded MaxStartups (too many unauthenticated connections)"
		}
		if st.seen > 0 && !st.sawBanner {
			return failure.Banner, "peer is not SSH: sent " + quoteFirst(st.first[:st.nfirst])
		}
		if strings.Contains(err.Error(), "overflow reading version string") {
			return failure.Banner, "peer is not SSH: no version line"
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return failure.Auth, authMessage(err)
		}
		if !st.sawBanner {
			return failure.Handshake, "connection closed before the SSH banner" + closedCause(err)
		}
		if isClosed(err) {
			return failure.Handshake, "connection closed during key exchange" + closedCause(err)
		}
		return failure.Handshake, oneLine(trimSSH(err.Error()))
	case phaseAuth:
		var partial *partialAuthError
		if errors.As(err, &partial) {
			return failure.Auth, oneLine(partial.Error())
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return failure.Auth, authMessage(err)
		}
		if isClosed(err) {
			return failure.Auth, "connection closed during authentication" + closedCause(err)
		}
		return failure.Auth, oneLine(trimSSH(err.Error()))
	default:
		var exit *ssh.ExitError
		var missing *ssh.ExitMissingError
		said := ""
		var cmdErr *commandError
		if errors.As(err, &cmdErr) && cmdErr.output != "" {
			said = ": " + cmdErr.output
		}
		switch {
		case errors.As(err, &exit):
			return failure.Exec, oneLine("command exited with status " + strconv.Itoa(exit.ExitStatus()) + sigSuffix(exit) + said)
		case errors.As(err, &missing):
			return failure.Exec, oneLine("command ended without an exit status" + said)
		}
		return failure.Exec, oneLine(trimSSH(err.Error()) + said)
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

func closedCause(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return " (reset by peer)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return " (EOF)"
	}
	if isClosed(err) {
		return ""
	}
	return ": " + oneLine(trimSSH(err.Error()))
}

// authMessage shortens "ssh: handshake failed: ssh: unable to authenticate,
// attempted methods [none publickey], no supported methods remain".
func authMessage(err error) string {
	s := err.Error()
	if i := strings.Index(s, "attempted methods ["); i >= 0 {
		rest := s[i+len("attempted methods ["):]
		if j := strings.IndexByte(rest, ']'); j >= 0 {
			return authRejected + " (tried " + strings.ReplaceAll(rest[:j], " ", ", ") + ")"
		}
	}
	return authRejected
}

// authRejected starts the message of a login the server refused.
const authRejected = "authentication rejected"

func trimSSH(s string) string {
	for {
		t := strings.TrimPrefix(strings.TrimPrefix(s, "ssh: handshake failed: "), "ssh: ")
		if t == s {
			return s
		}
		s = t
	}
}

func sigSuffix(e *ssh.ExitError) string {
	if sig := e.Signal(); sig != "" {
		return " (signal " + sig + ")"
	}
	return ""
}

// quoteFirst renders the peer's first bytes printable and short.
func quoteFirst(b []byte) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, c := range b {
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			sb.WriteByte(c)
		} else {
			sb.WriteByte('.')
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

// oneLine keeps messages to one short line.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, s)
	const max = 200
	if len(s) > max {
		s = s[:max-3] + "..."
	}
	return s
}
