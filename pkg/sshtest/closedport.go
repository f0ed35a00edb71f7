package sshtest

import (
	"fmt"
	"syscall"
	"testing"
)

// ClosedPort returns a loopback TCP port that refuses connections for the
// rest of the test. A port found by listening and closing again can be
// handed to another test's listener a moment later; this one stays bound,
// without listening, until the test ends, so nobody else gets it and every
// connection to it is refused.
func ClosedPort(t testing.TB) int {
	t.Helper()
	port, closePort, err := bindWithoutListening()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closePort)
	return port
}

func bindWithoutListening() (int, func(), error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("reserve a closed port: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return 0, nil, fmt.Errorf("reserve a closed port: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return 0, nil, fmt.Errorf("reserve a closed port: %w", err)
	}
	return sa.(*syscall.SockaddrInet4).Port, func() { syscall.Close(fd) }, nil
}
