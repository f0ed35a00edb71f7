package probe

import (
	"net"
	"reflect"
	"time"
	"unsafe"

	"golang.org/x/crypto/ssh"
)

// Ending a session the way OpenSSH's client does.
//
// `ssh host true` ends with SSH_MSG_DISCONNECT (reason 11,
// SSH2_DISCONNECT_BY_APPLICATION, "disconnected by user"), and sshd logs
// "Received disconnect from ... 11: disconnected by user" and exits.
// x/crypto/ssh has no way to send it: Conn.Close just closes the socket.
// Right after a publickey login sshd sends SSH_MSG_DEBUG lines (the key's
// authorized_keys options) and a hostkeys-00@openssh.com request; a client
// that closes at that moment makes sshd log "ssh_packet_send_debug: send
// DEBUG: Broken pipe" (or a reset) on every probe, 2,880 lines a day per
// server at the default log level.
//
// So a probe sends the disconnect itself, through the library's own
// encrypted packet writer (reached below, since it is unexported), then
// waits briefly for sshd to close its end before closing ours: closing
// with sshd's last packets unread would make the kernel answer with a
// reset. If the library's layout ever changes, the probe still half-closes
// and waits, which at least keeps sshd from writing into a closed socket;
// TestOpenSSHCleanDisconnect catches that change.

// disconnectByApplication is SSH2_DISCONNECT_BY_APPLICATION (RFC 4253 11.1).
const disconnectByApplication = 11

// disconnectWait bounds how long a probe waits for sshd to close the
// connection after the disconnect. sshd closes at once on loopback; a
// server that does not is cut off, and the probe's result is not changed.
const disconnectWait = time.Second

type disconnectMsg struct {
	Reason   uint32 `sshtype:"1"`
	Message  string
	Language string
}

//go:linkname handshakeWritePacket golang.org/x/crypto/ssh.(*handshakeTransport).writePacket
func handshakeWritePacket(t unsafe.Pointer, p []byte) error

// transportOf returns the *ssh.handshakeTransport behind c, or nil if the
// library's types are not the ones this file was written against.
func transportOf(c ssh.Conn) unsafe.Pointer {
	v := reflect.ValueOf(c)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct || v.Type().String() != "*ssh.connection" {
		return nil
	}
	f := v.Elem().FieldByName("transport")
	if !f.IsValid() || f.Kind() != reflect.Interface {
		return nil
	}
	f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Elem()
	if !f.IsValid() || f.Type().String() != "*ssh.handshakeTransport" {
		return nil
	}
	return f.UnsafePointer()
}

// closeSession ends an authenticated session: disconnect, wait for the
// server to close (bounded by disconnectWait and by deadline, the probe's
// own), close. conn is the TCP connection under sc.
func closeSession(sc ssh.Conn, conn net.Conn, deadline time.Time) {
	if t := transportOf(sc); t != nil {
		_ = handshakeWritePacket(t, ssh.Marshal(&disconnectMsg{Reason: disconnectByApplication, Message: "disconnected by user"}))
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	if wait := time.Now().Add(disconnectWait); wait.Before(deadline) {
		_ = conn.SetReadDeadline(wait)
	}
	// The library's reader consumes what sshd still sends and ends when
	// sshd closes (or the deadline passes).
	_ = sc.Wait()
	_ = sc.Close()
}
