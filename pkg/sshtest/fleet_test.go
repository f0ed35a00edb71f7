package sshtest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestParseGroups(t *testing.T) {
	t.Parallel()
	gs, err := ParseGroups("ok=5, tarpit=1,auth-reject=2")
	if err != nil {
		t.Fatal(err)
	}
	want := []Group{{ModeOK, 5}, {ModeTarpit, 1}, {ModeAuthReject, 2}}
	if len(gs) != len(want) {
		t.Fatalf("got %v, want %v", gs, want)
	}
	for i := range want {
		if gs[i] != want[i] {
			t.Fatalf("got %v, want %v", gs, want)
		}
	}
	for _, bad := range []string{"", "ok", "ok=x", "ok=-1", "bogus=1"} {
		if _, err := ParseGroups(bad); err == nil {
			t.Errorf("ParseGroups(%q): want error", bad)
		}
	}
}

func startFleet(t *testing.T, cfg Config) *Fleet {
	t.Helper()
	f, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func TestCSV(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Groups: []Group{{ModeOK, 2}, {ModeTarpit, 1}}, User: "probe"})
	var buf bytes.Buffer
	if err := f.CSV(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if lines[0] != "name,host,port,user,key" || len(lines) != 4 {
		t.Fatalf("csv:\n%s", buf.String())
	}
	want := "ok-00001,127.0.0.1," + strconv.Itoa(f.Server(0).Port) + ",probe,"
	if lines[1] != want {
		t.Errorf("line 1 = %q, want %q", lines[1], want)
	}
	if !strings.HasPrefix(lines[3], "tarpit-00001,") {
		t.Errorf("line 3 = %q", lines[3])
	}

	single := startFleet(t, Config{Groups: []Group{{ModeOK, 1}}})
	buf.Reset()
	_ = single.CSV(&buf)
	if !strings.Contains(buf.String(), "\nsrv-00001,") {
		t.Errorf("single-mode names: %q", buf.String())
	}
}

func TestConsecutivePorts(t *testing.T) {
	t.Parallel()
	// Find a free range by asking for one ephemeral port and trying the
	// ports after it; a clash is retried a few times.
	for attempt := 0; attempt < 5; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		f, err := Start(t.Context(), Config{Groups: []Group{{ModeOK, 3}}, BasePort: base})
		if err != nil {
			continue
		}
		for i := 0; i < 3; i++ {
			if f.Server(i).Port != base+i {
				t.Errorf("server %d port %d, want %d", i, f.Server(i).Port, base+i)
			}
		}
		// A second fleet on the same ports must fail and name the port.
		_, err = Start(t.Context(), Config{Groups: []Group{{ModeOK, 2}}, BasePort: base})
		if err == nil || !strings.Contains(err.Error(), strconv.Itoa(base)) {
			t.Errorf("clash error = %v, want one naming port %d", err, base)
		}
		f.Close()
		return
	}
	t.Skip("no free consecutive ports found")
}

func TestModesOnTheWire(t *testing.T) {
	t.Parallel()
	key, err := NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	f := startFleet(t, Config{
		Groups:         []Group{{ModeOK, 1}, {ModeNotSSH, 1}, {ModeDrop, 1}, {ModeTarpit, 1}, {ModeAuthReject, 1}, {ModeSlow, 1}},
		AuthorizedKeys: []ssh.PublicKey{key.PublicKey()},
		SlowDelay:      300 * time.Millisecond,
	})
	dial := func(i int) net.Conn {
		c, err := net.Dial("tcp", f.Server(i).Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		return c
	}
	cfg := &ssh.ClientConfig{User: "u", Auth: []ssh.AuthMethod{ssh.PublicKeys(key.Signer)}, HostKeyCallback: ssh.InsecureIgnoreHostKey()}

	t.Run("ok-exec", func(t *testing.T) {
		c, err := ssh.Dial("tcp", f.Server(0).Addr(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for cmd, want := range map[string]int{"true": 0, "false": 1, "uptime": 0} {
			s, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			err = s.Run(cmd)
			got := 0
			if ee, ok := err.(*ssh.ExitError); ok {
				got = ee.ExitStatus()
			} else if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s: exit %d, want %d", cmd, got, want)
			}
		}
	})
	t.Run("not-ssh", func(t *testing.T) {
		c := dial(1)
		_, _ = io.WriteString(c, "SSH-2.0-x\r\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		if !strings.HasPrefix(line, "HTTP/1.1 400") {
			t.Errorf("first line %q", line)
		}
	})
	t.Run("drop", func(t *testing.T) {
		c := dial(2)
		line, _ := bufio.NewReader(c).ReadString('\n')
		if !strings.HasPrefix(line, "SSH-2.0-") {
			t.Errorf("banner %q", line)
		}
	})
	t.Run("tarpit", func(t *testing.T) {
		c := dial(3)
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(make([]byte, 1))
		if n != 0 || !os.IsTimeout(err) {
			t.Errorf("tarpit read %d, %v; want timeout", n, err)
		}
	})
	t.Run("auth-reject", func(t *testing.T) {
		_, err := ssh.Dial("tcp", f.Server(4).Addr(), cfg)
		if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("slow", func(t *testing.T) {
		start := time.Now()
		c, err := ssh.Dial("tcp", f.Server(5).Addr(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Errorf("slow server answered in %v", d)
		}
	})
}

func TestRotateHostKey(t *testing.T) {
	t.Parallel()
	f := startFleet(t, Config{Groups: []Group{{ModeOK, 2}}, SharedHostKey: true})
	old := f.Server(0).HostKey()
	if !bytes.Equal(old.Marshal(), f.Server(1).HostKey().Marshal()) {
		t.Fatal("shared host key differs")
	}
	nk, err := f.RotateHostKey(0)
	if err != nil {
		t.Fatal(err)
	}
	var seen ssh.PublicKey
	cfg := &ssh.ClientConfig{User: "u", Auth: []ssh.AuthMethod{ssh.Password("x")},
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error { seen = k; return nil }}
	_, _ = ssh.Dial("tcp", f.Server(0).Addr(), cfg)
	if seen == nil || !bytes.Equal(seen.Marshal(), nk.Marshal()) || bytes.Equal(nk.Marshal(), old.Marshal()) {
		t.Error("server did not present the rotated key")
	}
	if _, err := f.RotateHostKey(5); err == nil {
		t.Error("out-of-range rotate: want error")
	}
}

func TestClientKeyFile(t *testing.T) {
	t.Parallel()
	k, err := NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	plain, enc := filepath.Join(dir, "id"), filepath.Join(dir, "id_enc")
	if err := k.WriteFile(plain, nil); err != nil {
		t.Fatal(err)
	}
	if err := k.WriteFile(enc, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(plain)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	b, _ := os.ReadFile(plain)
	if _, err := ssh.ParsePrivateKey(b); err != nil {
		t.Errorf("parse plain: %v", err)
	}
	b, _ = os.ReadFile(enc)
	if _, err := ssh.ParsePrivateKey(b); err == nil {
		t.Error("encrypted key parsed without passphrase")
	}
	if _, err := ssh.ParsePrivateKeyWithPassphrase(b, []byte("secret")); err != nil {
		t.Errorf("parse encrypted: %v", err)
	}
}

func TestCloseEndsTarpits(t *testing.T) {
	t.Parallel()
	f, err := Start(context.Background(), Config{Groups: []Group{{ModeTarpit, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", f.Server(0).Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(20 * time.Millisecond)
	done := make(chan struct{})
	go func() { f.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung on an open tarpit connection")
	}
}
