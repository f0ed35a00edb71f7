package api

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrustedProxies reads serve-api's --trusted-proxies: CIDR networks or
// IP addresses separated by commas ("" for none). Only a TCP peer inside
// one of them may say, in X-Forwarded-For, who the client is.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var out []netip.Prefix
	for _, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if strings.Contains(entry, "/") {
			p, err := netip.ParsePrefix(entry)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is not a CIDR network such as 10.0.0.0/24", entry)
			}
			if p.Bits() == 0 {
				return nil, fmt.Errorf("trusted proxy %q is every address: anyone could then forge X-Forwarded-For; name your proxies", entry)
			}
			out = append(out, netip.PrefixFrom(p.Addr().Unmap(), unmappedBits(p)).Masked())
			continue
		}
		a, err := netip.ParseAddr(entry)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is not an IP address or a CIDR network", entry)
		}
		a = a.Unmap().WithZone("")
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// unmappedBits is p's length once an IPv4-mapped IPv6 network is written
// as IPv4.
func unmappedBits(p netip.Prefix) int {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return p.Bits() - 96
	}
	return p.Bits()
}

// clientAddr is the address a request came from, for judging token-less
// pushes. It is the TCP peer, unless the peer is a trusted proxy: then
// X-Forwarded-For is read from the right (the hop the proxy itself added)
// and the first hop that is not a trusted proxy is the client. Hops left of
// it were written by whoever sent the request and are ignored, so a client
// cannot choose its address by sending the header itself. A hop that does
// not parse makes the address unknown (the zero Addr), which allows no
// token-less push: past a garbled hop nothing is trustworthy.
func (a *API) clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	client := ap.Addr().Unmap().WithZone("")
	if !a.trustedProxy(client) {
		return client
	}
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop, ok := parseHop(hops[j])
			if !ok {
				return netip.Addr{}
			}
			client = hop
			if !a.trustedProxy(hop) {
				return client
			}
		}
	}
	// Every hop was a trusted proxy (or there were none): the leftmost is
	// as far back as anyone can tell.
	return client
}

func (a *API) trustedProxy(addr netip.Addr) bool {
	for _, p := range a.opts.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// parseHop reads one X-Forwarded-For entry: an IP address, optionally with
// a port (some proxies add one; IPv6 then in brackets).
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}
