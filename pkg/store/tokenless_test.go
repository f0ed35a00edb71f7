package store

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseTokenless(t *testing.T) {
	tests := []struct {
		list, host string
		want       string // FormatTokenless of the result
		err        string // fragment of the error; "" for none
	}{
		{"10.0.0.5", "web1.example.net", "10.0.0.5/32", ""},
		{"10.0.0.0/24, 192.0.2.7", "h", "10.0.0.0/24,192.0.2.7/32", ""},
		{"10.0.0.9/24", "h", "10.0.0.0/24", ""}, // host bits cleared
		{"host", "192.0.2.10", "192.0.2.10/32", ""},
		{"HOST,10.0.0.0/8", "fd00::9", "fd00::9/128,10.0.0.0/8", ""},
		{"host", "fe80::1%eth0", "fe80::1/128", ""},
		{"::ffff:10.0.0.5", "h", "10.0.0.5/32", ""},
		{"::ffff:10.0.0.0/120", "h", "10.0.0.0/24", ""},
		{"10.0.0.5,10.0.0.5/32", "h", "10.0.0.5/32", ""}, // duplicates dropped
		{"host", "web1.example.net", "", "is a DNS name"},
		{"", "10.0.0.5", "", "is empty"},
		{"10.0.0.5,", "h", "", "empty entry"},
		{"web1.example.net", "h", "", `"web1.example.net" is not an IP address`},
		{"10.0.0.0/33", "h", "", "is not a CIDR network"},
		{"0.0.0.0/0", "h", "", "is every address"},
		{"::/0", "h", "", "is every address"},
		// Duplicates collapse before the count is checked.
		{strings.Repeat("10.0.0.1,", 3*MaxTokenlessNetworks) + "10.0.0.1", "h", "10.0.0.1/32", ""},
	}
	for _, tt := range tests {
		got, err := ParseTokenless(tt.list, tt.host)
		switch {
		case tt.err != "":
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseTokenless(%q, %q) = %v, %v; want ErrInvalid with %q", tt.list, tt.host, got, err, tt.err)
			}
		case err != nil || FormatTokenless(got) != tt.want:
			t.Errorf("ParseTokenless(%q, %q) = %q, %v; want %q", tt.list, tt.host, FormatTokenless(got), err, tt.want)
		}
	}
	var many []string
	for i := range MaxTokenlessNetworks + 1 {
		many = append(many, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}).String())
	}
	if _, err := ParseTokenless(strings.Join(many, ","), "h"); !errors.Is(err, ErrInvalid) {
		t.Errorf("%d networks: %v, want ErrInvalid", len(many), err)
	}
}

func TestTokenlessAllows(t *testing.T) {
	from, err := ParseTokenless("10.0.0.0/24,fd00::9", "h")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"10.0.0.1": true, "10.0.0.255": true, "10.0.1.1": false,
		"::ffff:10.0.0.3": true, "fd00::9": true, "fd00::9%eth0": true, "fd00::8": false,
	} {
		if got := TokenlessAllows(from, netip.MustParseAddr(addr)); got != want {
			t.Errorf("TokenlessAllows(%s) = %v, want %v", addr, got, want)
		}
	}
	if TokenlessAllows(from, netip.Addr{}) || TokenlessAllows(nil, netip.MustParseAddr("10.0.0.1")) {
		t.Error("an unknown address or an empty allowance allowed a push")
	}
}

func TestParseStoredTokenlessFailsClosed(t *testing.T) {
	if got := ParseStoredTokenless("10.0.0.0/24,192.0.2.1/32"); FormatTokenless(got) != "10.0.0.0/24,192.0.2.1/32" {
		t.Errorf("round trip = %v", got)
	}
	for _, bad := range []string{"10.0.0.0/24,garbage", "0.0.0.0/0", " 10.0.0.1/32"} {
		if got := ParseStoredTokenless(bad); got != nil {
			t.Errorf("ParseStoredTokenless(%q) = %v, want nothing allowed", bad, got)
		}
	}
}
