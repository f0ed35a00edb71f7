package hostkey

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func newWireKey(t *testing.T) ([]byte, string) {
	k := edKey(t)
	return k.Marshal(), ssh.FingerprintSHA256(k)
}

func TestFingerprint(t *testing.T) {
	wire, fp := newWireKey(t)
	got, err := Fingerprint(wire)
	if err != nil || got != "ssh-ed25519 "+fp || !strings.HasPrefix(fp, "SHA256:") {
		t.Errorf("Fingerprint = %q, %v; want %q", got, err, "ssh-ed25519 "+fp)
	}
	if _, err := Fingerprint([]byte("not a key")); err == nil {
		t.Error("Fingerprint of garbage succeeded")
	}
}

func TestMatchFingerprint(t *testing.T) {
	seen, seenFP := newWireKey(t)
	pinned, pinnedFP := newWireKey(t)
	_, otherFP := newWireKey(t)
	for _, c := range []struct {
		name string
		fp   string
		keys [][]byte
		want []byte
	}{
		{"last seen", seenFP, [][]byte{seen, pinned}, seen},
		{"pinned", pinnedFP, [][]byte{seen, pinned}, pinned},
		{"nil and garbage skipped", pinnedFP, [][]byte{nil, []byte("garbage"), pinned}, pinned},
		{"nobody's key", otherFP, [][]byte{seen, pinned}, nil},
		{"without the SHA256: prefix", strings.TrimPrefix(seenFP, "SHA256:"), [][]byte{seen}, nil},
		{"no keys", seenFP, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := MatchFingerprint(c.fp, c.keys...)
			if c.want == nil {
				if !errors.Is(err, ErrNoMatchingKey) || got != nil {
					t.Errorf("got %x, %v; want ErrNoMatchingKey", got, err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, c.want) {
				t.Errorf("got %x, %v; want the matching key", got, err)
			}
		})
	}
}
