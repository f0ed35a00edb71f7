package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/sshtest"
)

func TestRunWritesCSVAndReadyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "id.pub")
	if err := key.WritePublicFile(pub); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(dir, "ready")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--modes", "ok=2,tarpit=1", "--user", "probe", "--authorized-key", pub, "--csv", "-", "--ready-file", ready}, &stdout, &stderr)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ready file never appeared; stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 4 || lines[0] != "name,host,port,user,key" || !strings.HasPrefix(lines[3], "tarpit-00001,127.0.0.1,") || !strings.Contains(lines[1], ",probe,") {
		t.Errorf("csv:\n%s", stdout.String())
	}
	if _, err := os.Stat(ready); !os.IsNotExist(err) {
		t.Error("ready file not removed on shutdown")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--mode", "bogus"}, {"--modes", "ok=x"}, {"--count", "0"}, {"--authorized-key", "/nonexistent"}, {"extra"}} {
		var out, errOut bytes.Buffer
		if err := run(t.Context(), args, &out, &errOut); err == nil {
			t.Errorf("%v: want error", args)
		}
	}
}
