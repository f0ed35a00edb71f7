package probe

import (
	"github.com/stacksense/heartbeat/pkg/failure"

	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh/agent"

	"github.com/stacksense/heartbeat/pkg/sshtest"
)

// encryptedKey is generated once per test binary: bcrypt key derivation
// for passphrase-protected keys takes seconds under the race detector.
var encryptedKey = sync.OnceValues(func() (*sshtest.ClientKey, error) {
	return sshtest.NewClientKey()
})

func writeEncryptedKey(t *testing.T, path string) *sshtest.ClientKey {
	t.Helper()
	k, err := encryptedKey()
	if err != nil {
		t.Fatal(err)
	}
	encryptedPEM.Do(func() {
		tmp := filepath.Join(os.TempDir(), fmt.Sprintf("heartbeat-enc-%d", os.Getpid()))
		if err := k.WriteFile(tmp, []byte("secret")); err != nil {
			t.Fatal(err)
		}
		encryptedBytes, _ = os.ReadFile(tmp)
		_ = os.Remove(tmp)
	})
	if err := os.WriteFile(path, encryptedBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	encryptedPEM   sync.Once
	encryptedBytes []byte
)

func writeKey(t *testing.T, path string, passphrase string) *sshtest.ClientKey {
	t.Helper()
	k, err := sshtest.NewClientKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := k.WriteFile(path, []byte(passphrase)); err != nil {
		t.Fatal(err)
	}
	return k
}

// startAgent serves an in-memory keyring on a unix socket, as ssh-agent does.
func startAgent(t *testing.T, keys ...*sshtest.ClientKey) string {
	t.Helper()
	kr := agent.NewKeyring()
	for _, k := range keys {
		if err := kr.Add(agent.AddedKey{PrivateKey: k.Private}); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _ = agent.ServeAgent(kr, c) }()
		}
	}()
	return sock
}

func TestLoadAuthKeyFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	writeKey(t, open, "")
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	enc := filepath.Join(dir, "enc")
	writeEncryptedKey(t, enc)
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
		want       []string
	}{
		{"mode 0644", open, []string{open, "0644", "chmod 600"}},
		{"missing", filepath.Join(dir, "nope"), []string{"nope", "does not exist"}},
		{"passphrase without agent", enc, []string{enc, "passphrase-protected", "ssh-add"}},
		{"not a key", garbage, []string{garbage, "cannot parse"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadAuth(t.Context(), AuthConfig{KeyPath: c.path})
			if err == nil {
				t.Fatal("want error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadAuthOrder(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	rsaPath := filepath.Join(home, ".ssh", "id_rsa") // any key type; the name is what is searched
	writeKey(t, rsaPath, "")
	explicit := filepath.Join(t.TempDir(), "explicit")
	writeKey(t, explicit, "")
	agentKey, _ := sshtest.NewClientKey()
	sock := startAgent(t, agentKey)

	a, err := LoadAuth(t.Context(), AuthConfig{KeyPath: explicit, AgentSocket: sock, HomeDir: home})
	if err != nil || a.Source() != "key file "+explicit {
		t.Fatalf("explicit: %v %q", err, a.Source())
	}
	a.Close()
	a, err = LoadAuth(t.Context(), AuthConfig{AgentSocket: sock, HomeDir: home})
	if err != nil || !strings.HasPrefix(a.Source(), "ssh-agent") {
		t.Fatalf("agent: %v", err)
	}
	a.Close()
	a, err = LoadAuth(t.Context(), AuthConfig{AgentSocket: filepath.Join(home, "dead.sock"), HomeDir: home})
	if err != nil || a.Source() != "key file "+rsaPath {
		t.Fatalf("default file: %v", err)
	}
	edPath := filepath.Join(home, ".ssh", "id_ed25519")
	writeKey(t, edPath, "")
	a, err = LoadAuth(t.Context(), AuthConfig{HomeDir: home})
	if err != nil || a.Source() != "key file "+edPath+", then key file "+rsaPath {
		t.Fatalf("id_ed25519 first, then id_rsa: %v %q", err, a.Source())
	}
	// An unusable id_rsa beside a good id_ed25519 is skipped, as ssh
	// skips it; alone it stops the run.
	if err := os.Chmod(rsaPath, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err = LoadAuth(t.Context(), AuthConfig{HomeDir: home})
	if err != nil || !strings.HasPrefix(a.Source(), "key file "+edPath+", then skipped private key "+rsaPath) || len(a.signers) != 1 {
		t.Fatalf("bad id_rsa beside id_ed25519: %v %q", err, a.Source())
	}
	if err := os.Remove(edPath); err != nil {
		t.Fatal(err)
	}
	if _, err = LoadAuth(t.Context(), AuthConfig{HomeDir: home}); err == nil || !strings.Contains(err.Error(), "too open") {
		t.Fatalf("only a bad id_rsa: %v", err)
	}
	_, err = LoadAuth(t.Context(), AuthConfig{HomeDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "no SSH credentials") {
		t.Fatalf("nothing found: %v", err)
	}
}

// A passphrase-protected key file is usable when the agent holds that key.
func TestPassphraseKeyViaAgent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "enc")
	key := writeEncryptedKey(t, path)
	e := newEnvWithKey(t, key, sshtest.Group{Mode: sshtest.ModeOK, Count: 1})
	other, _ := sshtest.NewClientKey()
	if _, err := LoadAuth(t.Context(), AuthConfig{KeyPath: path, AgentSocket: startAgent(t, other)}); err == nil || !strings.Contains(err.Error(), "not loaded in ssh-agent") {
		t.Fatalf("agent without the key: %v", err)
	}
	a, err := LoadAuth(t.Context(), AuthConfig{KeyPath: path, AgentSocket: startAgent(t, key)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if r := probeOne(t, Options{Auth: a}, e.target(0)); !r.OK {
		t.Fatalf("probe via agent: %+v", r)
	}
}

func TestTargetKeyPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t, sshtest.Group{Mode: sshtest.ModeOK, Count: 3})
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := e.key.WriteFile(good, nil); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	writeKey(t, bad, "")
	_ = os.Chmod(bad, 0o640)
	other, _ := sshtest.NewClientKey()
	auth := NewAuth("other", other.Signer) // default key the servers refuse
	ts := e.targets()
	ts[0].KeyPath = good
	ts[1].KeyPath = bad
	ts[2].KeyPath = good

	err := auth.LoadTargetKeys(context.Background(), ts)
	if err == nil || ts[1].Name == "" || !strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), good) || !strings.Contains(err.Error(), "(used by "+ts[1].Name+")") {
		t.Fatalf("LoadTargetKeys: %v", err)
	}
	var results []Result
	Run(t.Context(), ts, Options{Auth: auth}, func(rs []Result) { results = append(results, rs...) })
	byID := map[int64]Result{}
	for _, r := range results {
		byID[r.ServerID] = r
	}
	if !byID[1].OK || !byID[3].OK {
		t.Errorf("targets with a good key path: %+v %+v", byID[1], byID[3])
	}
	if r := byID[2]; r.Class != failure.Key || !strings.Contains(r.Message, "too open") || r.Phases.Dial != 0 {
		t.Errorf("target with a bad key path should fail before dialling: %+v", r)
	}
}

// A login offers at most MaxKeysOffered keys (sshd's MaxAuthTries counts
// each refused one): agent keys first, but the key files are kept.
func TestLoadAuthOffersAtMostMaxAuthTries(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	edPath := filepath.Join(home, ".ssh", "id_ed25519")
	writeKey(t, edPath, "")
	var keys []*sshtest.ClientKey
	for i := 0; i < MaxKeysOffered+1; i++ {
		k, _ := sshtest.NewClientKey()
		keys = append(keys, k)
	}
	a, err := LoadAuth(t.Context(), AuthConfig{AgentSocket: startAgent(t, keys...), HomeDir: home})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if len(a.signers) != MaxKeysOffered || a.labels[len(a.labels)-1] != edPath || !strings.Contains(a.Source(), "2 agent keys not offered") {
		t.Errorf("offered %d keys %v; source %q", len(a.signers), a.labels, a.Source())
	}
}
