package sshtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"

	"golang.org/x/crypto/ssh"
)

// ClientKey is an Ed25519 user key for tests and demos.
type ClientKey struct {
	Private ed25519.PrivateKey
	Signer  ssh.Signer
}

// NewClientKey generates an Ed25519 client key.
func NewClientKey() (*ClientKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate client key: %w", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("client key signer: %w", err)
	}
	return &ClientKey{Private: priv, Signer: s}, nil
}

// PublicKey returns the public half.
func (k *ClientKey) PublicKey() ssh.PublicKey { return k.Signer.PublicKey() }

// AuthorizedKey returns the public key as an authorized_keys line.
func (k *ClientKey) AuthorizedKey() []byte { return ssh.MarshalAuthorizedKey(k.PublicKey()) }

// WriteFile writes the private key in OpenSSH PEM format with mode 0600.
// A non-empty passphrase encrypts it, as ssh-keygen -N would.
func (k *ClientKey) WriteFile(path string, passphrase []byte) error {
	var (
		block *pem.Block
		err   error
	)
	if len(passphrase) > 0 {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(k.Private, "heartbeat-test", passphrase)
	} else {
		block, err = ssh.MarshalPrivateKey(k.Private, "heartbeat-test")
	}
	if err != nil {
		return fmt.Errorf("marshal client key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return fmt.Errorf("write client key %s: %w", path, err)
	}
	// WriteFile keeps the mode of an existing file; force 0600.
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("chmod client key %s: %w", path, err)
	}
	return nil
}

// WritePublicFile writes the public key in authorized_keys format.
func (k *ClientKey) WritePublicFile(path string) error {
	if err := os.WriteFile(path, k.AuthorizedKey(), 0o644); err != nil {
		return fmt.Errorf("write public key %s: %w", path, err)
	}
	return nil
}

// ParseAuthorizedKeys parses every key in an authorized_keys-format file
// (comments and blank lines allowed), for Config.AuthorizedKeys.
func ParseAuthorizedKeys(data []byte) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	for len(bytes.TrimSpace(data)) > 0 {
		k, _, _, rest, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			if len(keys) > 0 && len(bytes.TrimSpace(rest)) == 0 {
				break
			}
			return nil, fmt.Errorf("parse authorized key: %w", err)
		}
		keys = append(keys, k)
		data = rest
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("parse authorized key: no keys found")
	}
	return keys, nil
}
