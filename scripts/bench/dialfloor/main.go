// Command dialfloor is the floor probe-ssh is measured against: a plain
// loop of ssh.Dial calls (TCP + handshake + auth, nothing else, library
// defaults) over the servers of an import CSV, with the same key and the
// same number of goroutines. It prints one line: servers, answered, seconds.
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

func main() {
	csvPath := flag.String("csv", "", "import CSV (name,host,port,user,key)")
	keyPath := flag.String("key", "", "private key file")
	user := flag.String("user", "bench", "SSH user")
	concurrency := flag.Int("concurrency", 512, "goroutines")
	flag.Parse()
	if err := run(*csvPath, *keyPath, *user, *concurrency); err != nil {
		fmt.Fprintln(os.Stderr, "dialfloor:", err)
		os.Exit(1)
	}
}

func run(csvPath, keyPath, user string, concurrency int) error {
	f, err := os.Open(csvPath)
	if err != nil {
		return err
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		return err
	}
	pem, err := os.ReadFile(keyPath)
	if err != nil {
		return err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return err
	}
	cfg := &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // the floor does no host-key bookkeeping
		Timeout:         10 * time.Second,
	}
	addrs := make(chan string)
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range addrs {
				c, err := ssh.Dial("tcp", a, cfg)
				if err != nil {
					failed.Add(1)
					continue
				}
				c.Close()
				ok.Add(1)
			}
		}()
	}
	for _, r := range rows[1:] {
		addrs <- net.JoinHostPort(r[1], r[2])
	}
	close(addrs)
	wg.Wait()
	fmt.Printf("servers=%d answered=%d seconds=%.3f\n", len(rows)-1, ok.Load(), time.Since(start).Seconds())
	return nil
}
