package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/sshtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Two `heartbeat probe-ssh` processes started together against one
// Postgres share the fleet: every server is probed exactly once (counted
// at the servers themselves), and each process reports only its share.
func TestPostgresTwoProbeProcessesShareTheFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const n = 300
	dir := t.TempDir()
	bin := filepath.Join(dir, "heartbeat")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	key, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "id_ed25519")
	if err := key.WriteFile(keyPath, nil); err != nil {
		t.Fatal(err)
	}
	fleet, err := sshtest.Start(context.Background(), sshtest.Config{Groups: []sshtest.Group{{Mode: sshtest.ModeOK, Count: n}},
		AuthorizedKeys: []ssh.PublicKey{key.PublicKey()}, SharedHostKey: true, User: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	var csv bytes.Buffer
	if err := fleet.CSV(&csv); err != nil {
		t.Fatal(err)
	}
	csvPath := filepath.Join(dir, "fleet.csv")
	if err := os.WriteFile(csvPath, csv.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "DATABASE_URL=" + pgtest.URL(t)}
	heartbeat := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		return cmd
	}
	for _, args := range [][]string{{"migrate"}, {"servers", "import", csvPath}} {
		if out, err := heartbeat(args...).CombinedOutput(); err != nil {
			t.Fatalf("heartbeat %v: %v\n%s", args, err, out)
		}
	}

	type runJSON struct {
		Servers int `json:"servers"`
		Probed  int `json:"probed"`
		Results []struct {
			ServerID int64 `json:"server_id"`
			OK       bool  `json:"ok"`
		} `json:"results"`
	}
	procs := make([]*exec.Cmd, 2)
	outs, errs := make([]*bytes.Buffer, 2), make([]*bytes.Buffer, 2)
	for i := range procs {
		outs[i], errs[i] = &bytes.Buffer{}, &bytes.Buffer{}
		procs[i] = heartbeat("probe-ssh", "--json", "--key", keyPath, "--concurrency", "16", "--probe-host", fmt.Sprintf("proc-%d", i))
		procs[i].Stdout = outs[i]
		procs[i].Stderr = errs[i]
	}
	start := time.Now()
	for _, p := range procs {
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range procs {
		if err := p.Wait(); err != nil {
			t.Fatalf("probe-ssh proc-%d: %v\n%s", i, err, errs[i])
		}
	}
	seen := map[int64]int{}
	for i, out := range outs {
		var r runJSON
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("proc-%d printed %q: %v", i, out.String(), err)
		}
		t.Logf("proc-%d: claimed %d, probed %d (%.1fs for both)", i, r.Servers, r.Probed, time.Since(start).Seconds())
		if r.Servers != r.Probed || len(r.Results) != r.Probed {
			t.Errorf("proc-%d: servers %d, probed %d, %d results", i, r.Servers, r.Probed, len(r.Results))
		}
		for _, res := range r.Results {
			seen[res.ServerID]++
			if !res.OK {
				t.Errorf("server %d failed", res.ServerID)
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d servers probed, want %d", len(seen), n)
	}
	for i, sv := range fleet.Servers() {
		if a := sv.Accepts(); a != 1 {
			t.Errorf("server %d accepted %d connections; want exactly 1", i, a)
		}
	}
}
