package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
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
	lan := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
	stored := map[int64]PushAuth{1: {TokenHash: ha}, 2: {TokenHash: hb}, 3: {}, 4: {TokenHash: ha, TokenlessFrom: lan}, 5: {TokenlessFrom: lan}}
	p := func(id int64, token, version string) Push {
		return Push{ServerID: id, TokenHash: HashToken(token), AgentVersion: version}
	}
	// bare is a push without a token from addr ("" for unknown).
	bare := func(id int64, addr, version string) Push {
		pu := Push{ServerID: id, AgentVersion: version}
		if addr != "" {
			pu.RemoteAddr = netip.MustParseAddr(addr)
		}
		return pu
	}
	from := func(pu Push, addr string) Push { pu.RemoteAddr = netip.MustParseAddr(addr); return pu }
	tests := []struct {
		name      string
		pushes    []Push
		record    string // fmt of the recorded (id, version) pairs
		ok        []bool
		tokenless []bool // nil: none
	}{
		{"none", nil, "[]", []bool{}, nil},
		{"one good", []Push{p(1, "a", "1.0")}, "[1:1.0]", []bool{true}, nil},
		{"wrong token", []Push{p(1, "b", "1.0")}, "[]", []bool{false}, nil},
		{"server without token", []Push{p(3, "", "1.0"), {ServerID: 3}}, "[]", []bool{false, false}, nil},
		{"unknown server", []Push{p(99, "a", "1.0")}, "[]", []bool{false}, nil},
		{"last push of a server wins", []Push{p(1, "a", "1.0"), p(1, "a", "1.1")}, "[1:1.1]", []bool{true, true}, nil},
		{"a refused push does not win", []Push{p(1, "a", "1.0"), p(1, "x", "evil")}, "[1:1.0]", []bool{true, false}, nil},
		{"ascending ids", []Push{p(2, "b", "b"), p(99, "a", ""), p(1, "a", "a")}, "[1:a 2:b]", []bool{true, false, true}, nil},
		{"token-less from an allowed address", []Push{bare(5, "10.0.0.7", "py"), bare(4, "::ffff:10.0.0.8", "py")}, "[4:py 5:py]", []bool{true, true}, []bool{true, true}},
		{"token-less from elsewhere", []Push{bare(5, "10.0.1.7", ""), bare(5, "", ""), bare(1, "10.0.0.7", "")}, "[]", []bool{false, false, false}, nil},
		{"token-less for an unknown server", []Push{bare(99, "10.0.0.7", "")}, "[]", []bool{false}, nil},
		{"a token is judged by the token, wherever it comes from", []Push{from(p(4, "b", "x"), "10.0.0.7"), from(p(4, "a", "y"), "192.0.2.1")}, "[4:y]", []bool{false, true}, nil},
	}
	for _, tt := range tests {
		record, verdicts := VerifiedPushes(tt.pushes, stored)
		var pairs []string
		for _, r := range record {
			pairs = append(pairs, fmt.Sprintf("%d:%s", r.ServerID, r.AgentVersion))
		}
		ok, tokenless := make([]bool, len(verdicts)), make([]bool, len(verdicts))
		for i, v := range verdicts {
			ok[i], tokenless[i] = v.OK, v.Tokenless
			if v.ServerName != "" || !v.At.IsZero() {
				t.Errorf("%s: verdict %d carries %+v", tt.name, i, v)
			}
		}
		want := tt.tokenless
		if want == nil {
			want = make([]bool, len(tt.pushes))
		}
		if got := fmt.Sprint(pairsOrEmpty(pairs)); got != tt.record || fmt.Sprint(ok) != fmt.Sprint(tt.ok) || fmt.Sprint(tokenless) != fmt.Sprint(want) {
			t.Errorf("%s: VerifiedPushes = %s, ok %v, token-less %v; want %s, %v, %v", tt.name, got, ok, tokenless, tt.record, tt.ok, want)
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
