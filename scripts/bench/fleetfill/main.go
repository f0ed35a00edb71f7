// Command fleetfill fills a store with a large fleet for
// scripts/bench/status.sh: N ssh servers imported in one call, a probe
// result for each (every 50th failed, so it is OFFLINE), an active alert on
// every 50th of the others (WARNING), and one evaluation so the 24-hour
// uptime has flips to read. Every server gets its own pinned ed25519
// host key, as a probed fleet has. It writes through the Store interface,
// as probe-ssh and `alert raise` do, so the rows are what they would write.
//
//	fleetfill -db postgres://postgres@127.0.0.1:5432/bench -n 100000
package main

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/backend"
)

func main() {
	url := flag.String("db", "", "Postgres URL of a migrated, empty database")
	n := flag.Int("n", 100000, "servers")
	flag.Parse()
	if err := fill(context.Background(), *url, *n); err != nil {
		fmt.Fprintln(os.Stderr, "fleetfill:", err)
		os.Exit(1)
	}
}

// hostKey is a server's ed25519 host key in SSH wire format (51 bytes, as
// a real one), derived from i so every server's differs.
func hostKey(i int) []byte {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i))
	pub, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(seed).Public())
	if err != nil {
		panic(err)
	}
	return pub.Marshal()
}

func fill(ctx context.Context, url string, n int) error {
	s, err := backend.Open(ctx, backend.Target{Engine: backend.Postgres, URL: url, ConnectTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer s.Close()
	specs := make([]store.ServerSpec, n)
	for i := range specs {
		specs[i] = store.ServerSpec{Name: fmt.Sprintf("srv-%06d", i), Host: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Port: 22, User: "monitor", KeyPath: "/etc/heartbeat/id_ed25519",
			// A day, so the fleet stays as filled while the benchmark runs.
			StaleAfter: 24 * time.Hour}
	}
	if _, err := s.ImportServers(ctx, specs); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	all, err := s.Servers(ctx)
	if err != nil {
		return err
	}
	// Only the servers filled here: a store may hold others (probemem.sh
	// imports a reachable fleet first), whose real keys a pin would refuse.
	ours := make(map[string]bool, n)
	for _, sp := range specs {
		ours[sp.Name] = true
	}
	list := slices.DeleteFunc(all, func(sv store.Server) bool { return !ours[sv.Name] })
	const batch = 500
	results := make([]store.ProbeResult, 0, batch)
	for i, sv := range list {
		r := store.ProbeResult{ServerID: sv.ID, OK: i%50 != 0, Latency: 3 * time.Millisecond,
			Phases:     store.Phases{Dial: time.Millisecond, Banner: time.Millisecond, Kex: time.Millisecond},
			PinHostKey: hostKey(i)}
		if !r.OK {
			r.ErrorClass, r.Error = "timeout", "no SSH banner within 10s"
		}
		results = append(results, r)
		if len(results) == batch || i == len(list)-1 {
			if err := s.RecordProbeResults(ctx, results); err != nil {
				return fmt.Errorf("record probes: %w", err)
			}
			results = results[:0]
		}
	}
	for i, sv := range list {
		if i%50 == 25 {
			if _, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: sv.ID, Kind: "alert", Severity: "warning", Message: "disk 91% full"}); err != nil {
				return fmt.Errorf("raise alert: %w", err)
			}
		}
	}
	if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	return nil
}
