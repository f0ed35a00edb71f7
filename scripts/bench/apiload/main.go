// Command apiload drives authenticated heartbeat pushes at a serve-api for
// scripts/bench/api.sh: C connections, each POSTing for a random server
// from a list, for a fixed time, then prints throughput and latency
// percentiles.
//
//	apiload -url http://127.0.0.1:8080 -tokens tokens.csv -c 64 -d 10s
//
// tokens.csv holds "id,token" lines, as api.sh writes them.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

type agent struct {
	url  string
	auth string
}

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "serve-api base URL")
	tokens := flag.String("tokens", "", "file of id,token lines")
	conns := flag.Int("c", 64, "concurrent connections")
	duration := flag.Duration("d", 10*time.Second, "measured duration")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up before the measurement")
	flag.Parse()
	if err := run(*base, *tokens, *conns, *duration, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, "apiload:", err)
		os.Exit(1)
	}
}

func readAgents(base, path string) ([]agent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []agent
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		id, token, ok := strings.Cut(strings.TrimSpace(sc.Text()), ",")
		if !ok || token == "" {
			continue
		}
		if _, err := strconv.ParseInt(id, 10, 64); err != nil {
			return nil, fmt.Errorf("%s: bad id %q", path, id)
		}
		out = append(out, agent{url: strings.TrimRight(base, "/") + "/api/heartbeat/" + id + "/", auth: "Bearer " + token})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no id,token lines", path)
	}
	return out, nil
}

func run(base, tokens string, conns int, duration, warmup time.Duration) error {
	agents, err := readAgents(base, tokens)
	if err != nil {
		return err
	}
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
			IdleConnTimeout: time.Minute, DisableCompression: true,
		},
	}
	body := []byte(`{"agent_version":"bench"}`)
	ctx, cancel := context.WithTimeout(context.Background(), warmup+duration)
	defer cancel()
	measureFrom := time.Now().Add(warmup)
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  = map[string]int{}
		wg        sync.WaitGroup
	)
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			var mine []time.Duration
			fails := map[string]int{}
			for ctx.Err() == nil {
				a := agents[rng.IntN(len(agents))]
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
				req.Header.Set("Authorization", a.auth)
				req.Header.Set("Content-Type", "application/json")
				start := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				took := time.Since(start)
				if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
					break
				}
				if start.Before(measureFrom) {
					continue
				}
				switch {
				case err != nil:
					fails[err.Error()]++
				case resp.StatusCode != http.StatusOK:
					fails[resp.Status]++
				default:
					mine = append(mine, took)
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			for k, v := range fails {
				failures[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(latencies)
	n := len(latencies)
	if n == 0 {
		return fmt.Errorf("no successful request (failures: %v)", failures)
	}
	pct := func(p float64) float64 {
		return float64(latencies[min(n-1, int(p*float64(n)))].Microseconds()) / 1000
	}
	failed := 0
	for _, v := range failures {
		failed += v
	}
	fmt.Printf("requests=%d failed=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
		n, failed, float64(n)/duration.Seconds(), pct(0.50), pct(0.99), pct(1))
	for k, v := range failures {
		fmt.Fprintf(os.Stderr, "apiload: %d× %s\n", v, k)
	}
	return nil
}
