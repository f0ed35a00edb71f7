package probe

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/stacksense/heartbeat/pkg/sshtest"
)

// Figures from these benchmarks include the in-process servers' CPU: the
// client and server share the process, so cpu-µs/probe is both sides.
//
//	go test -run '^$' -bench . -benchmem ./pkg/probe/

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration, probes int) {
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(probes), "cpu-µs/probe")
}

func BenchmarkProbe(b *testing.B) {
	e := newEnv(b, sshtest.Group{Mode: sshtest.ModeOK, Count: 1})
	tg := e.target(0)
	for _, kex := range []string{ssh.KeyExchangeCurve25519, ssh.KeyExchangeMLKEM768X25519} {
		b.Run(kex, func(b *testing.B) {
			p := NewProber(Options{Auth: e.auth})
			tmpl, err := p.template(context.Background(), &tg)
			if err != nil {
				b.Fatal(err)
			}
			c := *tmpl
			c.KeyExchanges = []string{kex}
			p.configs.Store(configKey{tg.User, tg.KeyPath}, &c)
			ctx := context.Background()
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if r := p.Probe(ctx, &tg); !r.OK {
					b.Fatal(r.Message)
				}
			}
			reportCPU(b, cpu, b.N)
		})
	}
}

// BenchmarkFleet1000 probes 1,000 servers per iteration: Run against a
// plain ssh.Dial loop with the library defaults, sequential and with the
// same concurrency.
func BenchmarkFleet1000(b *testing.B) {
	const n = 1000
	key, err := sshtest.NewClientKey()
	if err != nil {
		b.Fatal(err)
	}
	f, err := sshtest.Start(context.Background(), sshtest.Config{
		Groups: []sshtest.Group{{Mode: sshtest.ModeOK, Count: n}}, AuthorizedKeys: []ssh.PublicKey{key.PublicKey()}, SharedHostKey: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	targets := make([]Target, n)
	for i := range targets {
		s := f.Server(i)
		targets[i] = Target{ServerID: int64(i), Host: s.Host, Port: s.Port, User: "bench"}
	}
	const conc = 64
	report := func(b *testing.B, cpu time.Duration, start time.Time) {
		b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "probes/s")
		reportCPU(b, cpu, n*b.N)
	}

	b.Run("Run", func(b *testing.B) {
		auth := NewAuth("bench", key.Signer)
		b.ReportAllocs()
		cpu, start := cpuTime(), time.Now()
		for b.Loop() {
			sum := Run(context.Background(), targets, Options{Auth: auth, Concurrency: conc, Deadline: time.Minute}, func([]Result) {})
			if sum.Succeeded != n {
				b.Fatalf("%+v", sum)
			}
		}
		report(b, cpu, start)
	})
	dialCfg := &ssh.ClientConfig{User: "bench", Auth: []ssh.AuthMethod{ssh.PublicKeys(key.Signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}
	dial := func(b *testing.B, t *Target) {
		c, err := ssh.Dial("tcp", f.Server(int(t.ServerID)).Addr(), dialCfg)
		if err != nil {
			b.Error(err)
			return
		}
		c.Close()
	}
	b.Run("DialLoop", func(b *testing.B) {
		b.ReportAllocs()
		cpu, start := cpuTime(), time.Now()
		for b.Loop() {
			for i := range targets {
				dial(b, &targets[i])
			}
		}
		report(b, cpu, start)
	})
	b.Run("DialLoopParallel", func(b *testing.B) {
		b.ReportAllocs()
		cpu, start := cpuTime(), time.Now()
		for b.Loop() {
			var wg sync.WaitGroup
			sem := make(chan struct{}, conc)
			for i := range targets {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-sem; wg.Done() }()
					dial(b, &targets[i])
				}()
			}
			wg.Wait()
		}
		report(b, cpu, start)
	})
}
