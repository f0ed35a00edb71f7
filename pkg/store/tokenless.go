package store

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Token-less pushes are the migration path from the source system, whose
// agent (heartbeat_agent.py) POSTs its heartbeat without any token. A
// server may be allowed to push without a token from a list of networks,
// so that its old agent keeps it ONLINE until a token is deployed; the
// list is empty (off) by default and meant to be switched off again.

// MaxTokenlessNetworks caps the networks one server may push from without
// a token: the list is printed by servers show and doctor, and a long one
// means the allowance is no longer about one server's address.
const MaxTokenlessNetworks = 16

// TokenlessHost is the entry of a token-less list that stands for the
// server's registered host, which must then be an IP address.
const TokenlessHost = "host"

// ParseTokenless reads an admin's list of where a server may push from
// without a token: entries separated by commas, each a CIDR network
// (10.0.0.0/24), an IP address (one address: /32 or /128) or the word
// TokenlessHost for the server's registered host. host is that host; it
// must be an IP literal, since trust by DNS name would follow whoever
// controls the name's records and cannot be checked against the address a
// push comes from without a lookup per push. The result is normalised as
// NormalizeTokenless does; every error matches ErrInvalid and names the
// entry.
func ParseTokenless(list, host string) ([]netip.Prefix, error) {
	if strings.TrimSpace(list) == "" {
		return nil, invalidf("token-less list is empty: give CIDR networks, IP addresses or %q", TokenlessHost)
	}
	var out []netip.Prefix
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		switch {
		case entry == "":
			return nil, invalidf("token-less list %q has an empty entry", list)
		case strings.EqualFold(entry, TokenlessHost):
			addr, err := netip.ParseAddr(host)
			if err != nil {
				return nil, invalidf("host %q is a DNS name, not an IP address: token-less pushes are never trusted by name "+
					"(a name's records can change or be spoofed); give the server's address or network instead of %q", host, TokenlessHost)
			}
			out = append(out, netip.PrefixFrom(addr.WithZone(""), addr.BitLen()))
		case strings.Contains(entry, "/"):
			p, err := netip.ParsePrefix(entry)
			if err != nil {
				return nil, invalidf("token-less entry %q is not a CIDR network such as 10.0.0.0/24", entry)
			}
			out = append(out, p)
		default:
			addr, err := netip.ParseAddr(entry)
			if err != nil {
				return nil, invalidf("token-less entry %q is not an IP address, a CIDR network or %q", entry, TokenlessHost)
			}
			out = append(out, netip.PrefixFrom(addr.WithZone(""), addr.BitLen()))
		}
	}
	out = NormalizeTokenless(out)
	if err := ValidateTokenless(out); err != nil {
		return nil, err
	}
	return out, nil
}

// NormalizeTokenless returns networks in the one form both engines store
// and every check compares against: host bits cleared, IPv4-mapped IPv6
// networks written as IPv4 (a dual-stack listener reports IPv4 peers as
// ::ffff:a.b.c.d, and Contains treats the two forms as different), and
// duplicates dropped, in the order given. Invalid prefixes are kept, for
// ValidateTokenless to refuse.
func NormalizeTokenless(from []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(from))
	for _, p := range from {
		if p.IsValid() {
			if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
			}
			p = p.Masked()
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// ValidateTokenless decides, for both engines and the CLI, whether a list
// of networks may be stored as a server's token-less allowance: at least
// one and at most MaxTokenlessNetworks valid networks, none of them the
// whole address space (0.0.0.0/0 or ::/0 would accept a token-less push
// for the server from anyone). The error matches ErrInvalid.
func ValidateTokenless(from []netip.Prefix) error {
	switch {
	case len(from) == 0:
		return invalidf("token-less list is empty")
	case len(from) > MaxTokenlessNetworks:
		return invalidf("token-less list has %d networks, more than %d", len(from), MaxTokenlessNetworks)
	}
	for _, p := range from {
		switch {
		case !p.IsValid():
			return invalidf("token-less network %v is not valid", p)
		case p.Addr().Zone() != "":
			return invalidf("token-less network %v has an IPv6 zone", p)
		case p.Bits() == 0:
			return invalidf("token-less network %v is every address: anyone could push for the server; name its address or network", p)
		}
	}
	return nil
}

// TokenlessAllows reports whether a token-less push from addr is accepted
// by the allowance from. An unknown (zero) address is never allowed. The
// address is compared without its IPv6 zone and with IPv4-mapped IPv6
// unmapped, as NormalizeTokenless stores networks.
func TokenlessAllows(from []netip.Prefix, addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range from {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// FormatTokenless is the stored (and printed) form of an allowance: the
// networks in CIDR notation joined by commas; "" for none.
func FormatTokenless(from []netip.Prefix) string {
	parts := make([]string, len(from))
	for i, p := range from {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// ParseStoredTokenless reads what FormatTokenless wrote. Only
// SetServerTokenless writes the column, after ValidateTokenless; a value
// that does not parse (edited by hand) yields no allowance at all, so a
// damaged row fails closed rather than failing every read of the servers
// (and with it the `servers set --no-tokenless` that would repair it).
func ParseStoredTokenless(text string) []netip.Prefix {
	if text == "" {
		return nil
	}
	var out []netip.Prefix
	for _, part := range strings.Split(text, ",") {
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil
		}
		out = append(out, p)
	}
	out = NormalizeTokenless(out)
	if ValidateTokenless(out) != nil {
		return nil
	}
	return out
}

// TokenlessColumn is the value an engine writes for an allowance: NULL
// (nil) to switch token-less pushes off, else FormatTokenless. from must
// have passed ValidateTokenless, or be empty.
func TokenlessColumn(from []netip.Prefix) *string {
	if len(from) == 0 {
		return nil
	}
	s := FormatTokenless(from)
	return &s
}

// CheckTokenless validates an allowance for SetServerTokenless: empty
// (switch off) or a list ValidateTokenless accepts once normalised. It
// returns the normalised list.
func CheckTokenless(serverID int64, from []netip.Prefix) ([]netip.Prefix, error) {
	if len(from) == 0 {
		return nil, nil
	}
	from = NormalizeTokenless(from)
	if err := ValidateTokenless(from); err != nil {
		return nil, fmt.Errorf("server %d: %w", serverID, err)
	}
	return from, nil
}
