// Command sshfleet runs a fleet of in-process SSH servers on loopback, in
// any mix of healthy and failing modes, for demos and benchmarks. The
// servers live in pkg/sshtest; this file only wires flags to it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/stacksense/heartbeat/pkg/sshtest"
)

type options struct {
	count         int
	basePort      int
	mode          string
	modes         string
	authorizedKey string
	clientKey     string
	user          string
	csvPath       string
	readyFile     string
	keyColumn     string
	slowDelay     time.Duration
	sharedHostKey bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sshfleet:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("sshfleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.count, "count", 10, "number of servers when --modes is not given")
	fs.IntVar(&o.basePort, "base-port", 0, "first port; servers take consecutive ports (0 = ephemeral ports)")
	fs.StringVar(&o.mode, "mode", "ok", "mode of every server when --modes is not given: "+modeNames())
	fs.StringVar(&o.modes, "modes", "", "mixed fleet, e.g. ok=5,tarpit=1,auth-reject=1 (overrides --count/--mode)")
	fs.StringVar(&o.authorizedKey, "authorized-key", "", "public key file (authorized_keys format) ok servers accept; default: any key")
	fs.StringVar(&o.clientKey, "client-key", "", "write a new Ed25519 client key to FILE (0600) and FILE.pub, and accept it (reuses FILE if it exists), so a demo needs nothing but Go")
	fs.StringVar(&o.user, "user", "", "only user ok servers accept, and the CSV user column; default: any user")
	fs.StringVar(&o.csvPath, "csv", "", "write the fleet as import CSV (name,host,port,user,key) to FILE; - for stdout")
	fs.StringVar(&o.keyColumn, "key-column", "", "value for the CSV key column (a private key path); default empty")
	fs.StringVar(&o.readyFile, "ready-file", "", "create FILE once every listener is up, so scripts can wait for it")
	fs.DurationVar(&o.slowDelay, "slow-delay", 2*time.Second, "how long slow servers take to send their banner")
	fs.BoolVar(&o.sharedHostKey, "shared-host-key", false, "one host key for all servers (faster start for large benchmark fleets)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sshfleet [flags]\n\nRuns in-process SSH servers on 127.0.0.1 until SIGINT or SIGTERM.\n\nModes:\n"+
			"  ok           accepts the authorized key(s); exec \"false\" exits 1, anything else exits 0\n"+
			"  auth-reject  completes key exchange, rejects every credential\n"+
			"  tarpit       accepts TCP, never sends a byte\n"+
			"  slow         trickles its banner over --slow-delay, then behaves like ok\n"+
			"  drop         sends its banner, closes during key exchange\n"+
			"  not-ssh      answers with an HTTP/1.1 400 and closes\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg, err := o.config()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	start := time.Now()
	fleet, err := sshtest.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer fleet.Close()
	if o.csvPath != "" {
		if err := writeCSV(fleet, o.csvPath, stdout); err != nil {
			return err
		}
	}
	attrs := []any{"servers", fleet.Len(), "first_port", fleet.Server(0).Port, "last_port", fleet.Server(fleet.Len() - 1).Port, "startup", time.Since(start).Round(time.Millisecond)}
	for _, g := range fleet.Counts() {
		attrs = append(attrs, string(g.Mode), g.Count)
	}
	log.Info("fleet up", attrs...)
	if o.readyFile != "" {
		if err := os.WriteFile(o.readyFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("write ready file: %w", err)
		}
		defer os.Remove(o.readyFile)
	}
	<-ctx.Done()
	log.Info("shutting down")
	return nil
}

func (o *options) config() (sshtest.Config, error) {
	cfg := sshtest.Config{
		BasePort:      o.basePort,
		User:          o.user,
		KeyColumn:     o.keyColumn,
		SlowDelay:     o.slowDelay,
		SharedHostKey: o.sharedHostKey,
	}
	if o.modes != "" {
		gs, err := sshtest.ParseGroups(o.modes)
		if err != nil {
			return cfg, err
		}
		cfg.Groups = gs
	} else {
		m, err := sshtest.ParseMode(o.mode)
		if err != nil {
			return cfg, err
		}
		if o.count < 1 {
			return cfg, fmt.Errorf("--count must be at least 1, got %d", o.count)
		}
		cfg.Groups = []sshtest.Group{{Mode: m, Count: o.count}}
	}
	total := 0
	for _, g := range cfg.Groups {
		total += g.Count
	}
	if total == 0 {
		return cfg, errors.New("fleet has no servers")
	}
	if o.authorizedKey != "" {
		data, err := os.ReadFile(o.authorizedKey)
		if err != nil {
			return cfg, fmt.Errorf("read --authorized-key: %w", err)
		}
		keys, err := sshtest.ParseAuthorizedKeys(data)
		if err != nil {
			return cfg, fmt.Errorf("--authorized-key %s: %w", o.authorizedKey, err)
		}
		cfg.AuthorizedKeys = keys
	}
	if o.clientKey != "" {
		pub, err := clientKey(o.clientKey)
		if err != nil {
			return cfg, err
		}
		cfg.AuthorizedKeys = append(cfg.AuthorizedKeys, pub)
	}
	return cfg, nil
}

// clientKey returns the public half of the client key at path, generating
// the key first if the file does not exist.
func clientKey(path string) (ssh.PublicKey, error) {
	if data, err := os.ReadFile(path); err == nil {
		signer, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("--client-key %s: %w", path, err)
		}
		return signer.PublicKey(), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--client-key: %w", err)
	}
	k, err := sshtest.NewClientKey()
	if err != nil {
		return nil, err
	}
	if err := k.WriteFile(path, nil); err != nil {
		return nil, err
	}
	if err := k.WritePublicFile(path + ".pub"); err != nil {
		return nil, err
	}
	return k.PublicKey(), nil
}

func writeCSV(f *sshtest.Fleet, path string, stdout io.Writer) error {
	if path == "-" {
		return f.CSV(stdout)
	}
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create csv: %w", err)
	}
	if err := f.CSV(out); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("close csv %s: %w", path, err)
	}
	return nil
}

func modeNames() string {
	names := make([]string, len(sshtest.Modes))
	for i, m := range sshtest.Modes {
		names[i] = string(m)
	}
	return strings.Join(names, ", ")
}
