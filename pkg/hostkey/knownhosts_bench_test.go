package hostkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// BenchmarkKnownHostsHost measures the per-probe known_hosts lookup and
// algorithm ordering for one target in a 10,000-host file of plain entries
// (the index case) and of hashed entries (every line is an HMAC, as in ssh).
//
//	go test -run '^$' -bench KnownHostsHost ./pkg/hostkey/
func BenchmarkKnownHostsHost(b *testing.B) {
	for _, hashed := range []bool{false, true} {
		b.Run(fmt.Sprintf("hashed=%v", hashed), func(b *testing.B) {
			k := edKeyB(b)
			var sb strings.Builder
			for i := 0; i < 10000; i++ {
				name := fmt.Sprintf("[10.%d.%d.%d]:2222", i>>16&255, i>>8&255, i&255)
				if hashed {
					name = knownhosts.HashHostname(name)
				}
				sb.WriteString(knownhosts.Line([]string{name}, k) + "\n")
			}
			path := filepath.Join(b.TempDir(), "known_hosts")
			if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
				b.Fatal(err)
			}
			c, err := NewChecker(PolicyKnownHosts, path)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h := c.Host("10.0.19.136", 2222, nil)
				if h.Algorithms()[0] != ssh.KeyAlgoED25519 || h.Check(k) != nil {
					b.Fatal("lookup failed")
				}
			}
		})
	}
}

func edKeyB(b *testing.B) ssh.PublicKey {
	b.Helper()
	s, err := ssh.NewSignerFromKey(ed25519Priv(b))
	if err != nil {
		b.Fatal(err)
	}
	return s.PublicKey()
}

func ed25519Priv(b *testing.B) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	return priv
}
