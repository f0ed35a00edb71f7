package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// AuthConfig says where credentials come from. The caller resolves flags and
// environment (SSH_PRIVATE_KEY_PATH, SSH_AUTH_SOCK, HOME); this package
// reads no environment.
type AuthConfig struct {
	// KeyPath is an explicit private key file; it wins over everything.
	KeyPath string
	// AgentSocket is the ssh-agent socket (SSH_AUTH_SOCK); used when no
	// KeyPath is given, and to unlock passphrase-protected key files.
	AgentSocket string
	// HomeDir is searched for .ssh/id_ed25519 then .ssh/id_rsa when
	// neither KeyPath nor a usable agent is available.
	HomeDir string
}

// Auth holds credentials parsed once per run. It is safe for concurrent use.
type Auth struct {
	source  string
	method  ssh.AuthMethod
	signers []ssh.Signer
	labels  []string // one per signer, for messages
	agent   agent.ExtendedAgent
	conn    net.Conn

	mu      sync.Mutex
	perPath map[string]keyEntry
}

type keyEntry struct {
	method ssh.AuthMethod
	err    error
}

// LoadAuth resolves credentials as OpenSSH's client does: cfg.KeyPath
// alone if given; otherwise every key the agent at cfg.AgentSocket holds,
// then ~/.ssh/id_ed25519 and ~/.ssh/id_rsa (a file whose key the agent
// already offers is not offered twice), at most MaxKeysOffered in all. A
// key file that is missing, unreadable, readable by group or others, or
// passphrase-protected with no agent holding it yields one error naming
// the file and the fix when it is cfg.KeyPath or when no other key is
// usable; otherwise it is skipped (and named in Source), as ssh skips it.
func LoadAuth(ctx context.Context, cfg AuthConfig) (*Auth, error) {
	a := &Auth{perPath: make(map[string]keyEntry)}
	if cfg.AgentSocket != "" {
		// A missing or dead agent is not an error by itself: the fallback
		// files may still work, and OpenSSH behaves the same way.
		_ = a.connectAgent(ctx, cfg.AgentSocket)
	}
	if cfg.KeyPath != "" {
		s, err := a.loadKeyFile(ctx, cfg.KeyPath)
		if err != nil {
			a.Close()
			return nil, err
		}
		a.useSigners("key file "+cfg.KeyPath, s, cfg.KeyPath)
		return a, nil
	}
	var agentKeys, fileKeys []ssh.Signer
	var sources, skipped, fileLabels []string
	var firstErr error
	if a.agent != nil {
		if signers, err := a.agent.Signers(); err == nil && len(signers) > 0 {
			agentKeys = signers
			sources = append(sources, fmt.Sprintf("ssh-agent %s (%d keys)", cfg.AgentSocket, len(signers)))
		}
	}
	if cfg.HomeDir != "" {
		for _, name := range []string{"id_ed25519", "id_rsa"} {
			p := filepath.Join(cfg.HomeDir, ".ssh", name)
			if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				continue
			}
			s, err := a.loadKeyFile(ctx, p)
			if err != nil {
				skipped = append(skipped, err.Error())
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			if holds(agentKeys, s[0].PublicKey()) {
				continue
			}
			fileKeys = append(fileKeys, s[0])
			fileLabels = append(fileLabels, p)
			sources = append(sources, "key file "+p)
		}
	}
	if len(agentKeys)+len(fileKeys) > 0 {
		// Past MaxKeysOffered the server would disconnect before the key
		// files are offered; they are the deliberate setting (cron has no
		// agent), so extra agent keys give way.
		if n := len(agentKeys) + len(fileKeys) - MaxKeysOffered; n > 0 {
			keep := max(len(agentKeys)-n, 0)
			sources = append(sources, fmt.Sprintf("%d agent keys not offered (at most %d keys per login)", len(agentKeys)-keep, MaxKeysOffered))
			agentKeys = agentKeys[:keep]
		}
		if len(skipped) > 0 {
			sources = append(sources, "skipped "+strings.Join(skipped, "; "))
		}
		labels := make([]string, 0, len(agentKeys)+len(fileKeys))
		for _, k := range agentKeys {
			labels = append(labels, "agent "+ssh.FingerprintSHA256(k.PublicKey()))
		}
		a.useSigners(strings.Join(sources, ", then "), append(agentKeys, fileKeys...), append(labels, fileLabels...)...)
		return a, nil
	}
	a.Close()
	if firstErr != nil {
		// Key files exist but none is usable: name the first and its fix.
		return nil, firstErr
	}
	tried := []string{}
	if cfg.AgentSocket != "" {
		tried = append(tried, "ssh-agent "+cfg.AgentSocket+" (unreachable or no keys)")
	}
	if cfg.HomeDir != "" {
		tried = append(tried, filepath.Join(cfg.HomeDir, ".ssh", "id_ed25519"), filepath.Join(cfg.HomeDir, ".ssh", "id_rsa"))
	}
	return nil, fmt.Errorf("no SSH credentials found (tried %s): set SSH_PRIVATE_KEY_PATH or pass --key, or load a key into ssh-agent", strings.Join(append(tried, "no explicit key path"), ", "))
}

// MaxKeysOffered is how many keys one login offers at most: sshd's default
// MaxAuthTries (6) counts every key it refuses, and disconnects at the
// limit ("Too many authentication failures").
const MaxKeysOffered = 6

func holds(signers []ssh.Signer, pub ssh.PublicKey) bool {
	want := pub.Marshal()
	for _, s := range signers {
		if bytes.Equal(s.PublicKey().Marshal(), want) {
			return true
		}
	}
	return false
}

// NewAuth wraps signers already in memory (tests, embedding programs).
func NewAuth(source string, signers ...ssh.Signer) *Auth {
	a := &Auth{perPath: make(map[string]keyEntry)}
	labels := make([]string, len(signers))
	for i, s := range signers {
		labels[i] = ssh.FingerprintSHA256(s.PublicKey())
	}
	a.useSigners(source, signers, labels...)
	return a
}

func (a *Auth) useSigners(source string, s []ssh.Signer, labels ...string) {
	a.source = source
	a.labels = labels
	a.signers = withOpenSSHAlgorithms(s)
	a.method = ssh.PublicKeys(a.signers...)
}

// offered describes the keys a login with keyPath ("" = the defaults)
// offers, for an authentication failure: a file by its path, an agent key
// by its SHA256 fingerprint (as sshd logs it), so an operator can tell
// which keys the server refused.
func (a *Auth) offered(keyPath string) string {
	if keyPath != "" {
		return keyPath
	}
	return strings.Join(a.labels, ", ")
}

// rsaAlgorithms is OpenSSH's client preference for RSA keys
// (PubkeyAcceptedAlgorithms: rsa-sha2-512 before rsa-sha2-256). The library
// picks the first of a signer's algorithms that the server lists in its
// server-sig-algs extension, and its own default puts rsa-sha2-256 first,
// which a server accepting only rsa-sha2-512 refuses while ssh gets in.
// Plain ssh-rsa (SHA-1) stays last: the library uses it only for servers
// that send no server-sig-algs (OpenSSH before 7.2).
var rsaAlgorithms = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}

// withOpenSSHAlgorithms gives RSA signers OpenSSH's algorithm preference;
// other key types have one signature algorithm and are returned as they
// are.
func withOpenSSHAlgorithms(signers []ssh.Signer) []ssh.Signer {
	out := make([]ssh.Signer, len(signers))
	for i, s := range signers {
		out[i] = s
		as, ok := s.(ssh.AlgorithmSigner)
		if !ok || s.PublicKey().Type() != ssh.KeyAlgoRSA {
			continue
		}
		if ms, err := ssh.NewSignerWithAlgorithms(as, rsaAlgorithms); err == nil {
			out[i] = ms
		}
	}
	return out
}

func (a *Auth) connectAgent(ctx context.Context, socket string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("connect to ssh-agent %s: %w", socket, err)
	}
	a.conn = c
	a.agent = agent.NewClient(c)
	return nil
}

// Source describes where the default credentials came from, for logs
// ("key file /root/.ssh/id_ed25519", "ssh-agent /tmp/agent.sock").
func (a *Auth) Source() string { return a.source }

// Close releases the agent connection, if any.
func (a *Auth) Close() error {
	if a.conn != nil {
		return a.conn.Close()
	}
	return nil
}

// loadKeyFile reads and parses one private key file with OpenSSH's checks.
func (a *Auth) loadKeyFile(_ context.Context, path string) ([]ssh.Signer, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("private key %s: file does not exist: check the path (--key / SSH_PRIVATE_KEY_PATH)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("private key %s: not a regular file", path)
	}
	// Same refusal as OpenSSH's "UNPROTECTED PRIVATE KEY FILE".
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("private key %s: permissions %04o are too open (readable by group or others): run chmod 600 %s", path, perm, path)
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("private key %s: cannot read: %w", path, err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err == nil {
		return []ssh.Signer{signer}, nil
	}
	var pm *ssh.PassphraseMissingError
	if errors.As(err, &pm) {
		if s := a.agentSignerFor(pm.PublicKey); s != nil {
			return []ssh.Signer{s}, nil
		}
		if a.agent != nil {
			return nil, fmt.Errorf("private key %s: passphrase-protected and not loaded in ssh-agent: run ssh-add %s", path, path)
		}
		return nil, fmt.Errorf("private key %s: passphrase-protected and no ssh-agent available: start ssh-agent and run ssh-add %s, or use a key without a passphrase", path, path)
	}
	return nil, fmt.Errorf("private key %s: cannot parse (want an OpenSSH, PKCS#1/8 or SEC1 private key): %w", path, err)
}

// agentSignerFor returns the agent's signer for pub, if the agent holds it.
func (a *Auth) agentSignerFor(pub ssh.PublicKey) ssh.Signer {
	if a.agent == nil || pub == nil {
		return nil
	}
	signers, err := a.agent.Signers()
	if err != nil {
		return nil
	}
	want := pub.Marshal()
	for _, s := range signers {
		if bytes.Equal(s.PublicKey().Marshal(), want) {
			return s
		}
	}
	return nil
}

// LoadTargetKeys parses every distinct Target.KeyPath once and caches it,
// so a bad key file is found before any server is contacted. The error
// joins one line per bad file, naming the servers that use it; good files
// stay cached either way, and a probe of a server with a bad file fails
// with class key.
func (a *Auth) LoadTargetKeys(ctx context.Context, targets []Target) error {
	users := map[string][]string{}
	var bad []string // paths in first-seen order
	for i := range targets {
		p := targets[i].KeyPath
		if p == "" {
			continue
		}
		if _, err := a.methodFor(ctx, p); err != nil {
			if users[p] == nil {
				bad = append(bad, p)
			}
			users[p] = append(users[p], targets[i].Name)
		}
	}
	errs := make([]error, 0, len(bad))
	for _, p := range bad {
		_, err := a.methodFor(ctx, p)
		errs = append(errs, fmt.Errorf("%w (used by %s)", err, strings.Join(users[p], ", ")))
	}
	return errors.Join(errs...)
}

// methodFor returns the auth method for a key path ("" = the default).
func (a *Auth) methodFor(ctx context.Context, path string) (ssh.AuthMethod, error) {
	if path == "" {
		return a.method, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.perPath[path]; ok {
		return e.method, e.err
	}
	s, err := a.loadKeyFile(ctx, path)
	e := keyEntry{err: err}
	if err == nil {
		e.method = ssh.PublicKeys(withOpenSSHAlgorithms(s)...)
	}
	a.perPath[path] = e
	return e.method, e.err
}

// partialAuthError is a login the server accepted in part: our key
// satisfied one step of sshd's AuthenticationMethods, and the next step
// needs a method a monitoring probe cannot do (a password or one-time
// code).
type partialAuthError struct {
	accepted []string // methods that succeeded partially
	required []string // what the server still allows
}

func (e *partialAuthError) Error() string {
	return strings.Join(e.accepted, ", ") + " accepted, server also requires " + strings.Join(e.required, " or ") + " (not supported for monitoring)"
}

// stopAtUnsupportedMethod is the probe's ssh.ClientConfig.AuthCallback:
// after a partial success it ends authentication with a partialAuthError
// when the server no longer offers publickey, instead of the library's
// "attempted methods [none]", which hides that the key was accepted.
func stopAtUnsupportedMethod(ctx *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
	if len(ctx.PartialSuccessMethods) > 0 && !slices.Contains(ctx.AllowedMethods, "publickey") {
		return nil, &partialAuthError{accepted: ctx.PartialSuccessMethods, required: ctx.AllowedMethods}
	}
	return nil, nil
}
