package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
)

func TestHashToken(t *testing.T) {
	// SHA-256("abc") from FIPS 180-2: the stored form must never change,
	// or every issued token stops working after an upgrade.
	want, _ := hex.DecodeString("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
	if got := HashToken("abc"); !bytes.Equal(got, want) {
		t.Errorf("HashToken(abc) = %x, want %x", got, want)
	}
	if bytes.Equal(HashToken("a"), HashToken("b")) {
		t.Error("different tokens hash alike")
	}
}

func TestNewToken(t *testing.T) {
	a, ha, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 43 || a == b || !bytes.Equal(ha, HashToken(a)) {
		t.Errorf("NewToken = %q (hash %x), then %q; want 43 fresh characters and their hash", a, ha, b)
	}
}

func TestTokenMatches(t *testing.T) {
	h := HashToken("secret")
	other := HashToken("other")
	tests := []struct {
		name              string
		stored, presented []byte
		want              bool
	}{
		{"same", h, HashToken("secret"), true},
		{"different token", h, other, false},
		{"no stored token", nil, h, false},
		{"no stored token, nothing presented", nil, nil, false},
		{"empty stored token", []byte{}, []byte{}, false},
		{"nothing presented", h, nil, false},
		{"truncated presented", h, h[:16], false},
		{"truncated stored equal to presented", h[:16], h[:16], false},
		{"longer presented", h, append(append([]byte{}, h...), 0), false},
		{"one bit off", h, flip(h), false},
	}
	for _, tt := range tests {
		if got := TokenMatches(tt.stored, tt.presented); got != tt.want {
			t.Errorf("%s: TokenMatches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func flip(b []byte) []byte {
	c := append([]byte{}, b...)
	c[len(c)-1] ^= 1
	return c
}

func TestVerifiedPushes(t *testing.T) {
	ha, hb := HashToken("a"), HashToken("b")
	stored := map[int64][]byte{1: ha, 2: hb, 3: nil}
	p := func(id int64, token, version string) Push {
		return Push{ServerID: id, TokenHash: HashToken(token), AgentVersion: version}
	}
	tests := []struct {
		name   string
		pushes []Push
		record string // fmt of the recorded (id, version) pairs
		ok     []bool
	}{
		{"none", nil, "[]", []bool{}},
		{"one good", []Push{p(1, "a", "1.0")}, "[1:1.0]", []bool{true}},
		{"wrong token", []Push{p(1, "b", "1.0")}, "[]", []bool{false}},
		{"server without token", []Push{p(3, "", "1.0"), {ServerID: 3}}, "[]", []bool{false, false}},
		{"unknown server", []Push{p(99, "a", "1.0")}, "[]", []bool{false}},
		{"last push of a server wins", []Push{p(1, "a", "1.0"), p(1, "a", "1.1")}, "[1:1.1]", []bool{true, true}},
		{"a refused push does not win", []Push{p(1, "a", "1.0"), p(1, "x", "evil")}, "[1:1.0]", []bool{true, false}},
		{"ascending ids", []Push{p(2, "b", "b"), p(99, "a", ""), p(1, "a", "a")}, "[1:a 2:b]", []bool{true, false, true}},
	}
	for _, tt := range tests {
		record, ok := VerifiedPushes(tt.pushes, stored)
		var pairs []string
		for _, r := range record {
			pairs = append(pairs, fmt.Sprintf("%d:%s", r.ServerID, r.AgentVersion))
		}
		if got := fmt.Sprint(pairsOrEmpty(pairs)); got != tt.record || fmt.Sprint(ok) != fmt.Sprint(tt.ok) {
			t.Errorf("%s: VerifiedPushes = %s, %v; want %s, %v", tt.name, got, ok, tt.record, tt.ok)
		}
	}
	if len(ha) != sha256.Size {
		t.Fatal("token hash is not SHA-256 sized")
	}
}

func pairsOrEmpty(p []string) []string {
	if p == nil {
		return []string{}
	}
	return p
}
