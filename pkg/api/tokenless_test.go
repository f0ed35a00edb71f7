package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/store"
)

func allowTokenless(t *testing.T, s store.Store, id int64, list string) {
	t.Helper()
	from, err := store.ParseTokenless(list, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetServerTokenless(context.Background(), id, from); err != nil {
		t.Fatal(err)
	}
}

// metricLine returns the line of /metrics that starts with name.
func metricLine(t *testing.T, base, name string) string {
	t.Helper()
	a := call(t, "GET", base+"/metrics", "")
	for _, line := range strings.Split(string(a.body), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return line
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return ""
}

// The source system's agent POSTs without any token. Over real loopback
// HTTP (the peer is 127.0.0.1), such a push is accepted, with the answer a
// token push gets, only for a server that allows the peer's address, and
// the accepted ones are counted on /metrics.
func TestTokenlessPush(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		srv := serve(t, s, api.Options{})
		legacy := addAgent(t, s, "legacy")
		elsewhere := addAgent(t, s, "elsewhere")
		off := addAgent(t, s, "off")
		allowTokenless(t, s, legacy.id, "127.0.0.0/8")
		allowTokenless(t, s, elsewhere.id, "10.0.0.5")
		url := func(ag agent) string { return srv.URL + "/api/heartbeat/" + strconv.FormatInt(ag.id, 10) + "/" }

		// The seed guide's curl: JSON body, no Authorization header.
		a := call(t, "POST", url(legacy), `{"agent_version": "1.0.0"}`, jsonType)
		if a.code != http.StatusOK {
			t.Fatalf("token-less push from an allowed address = %d %s", a.code, a.body)
		}
		var resp map[string]any
		if err := json.Unmarshal(a.body, &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp) != 5 || resp["status"] != "ok" || resp["server_id"] != float64(legacy.id) || resp["server_name"] != "legacy" || resp["heartbeat_received"] != true {
			t.Errorf("token-less answer = %s, want the seed's five fields", a.body)
		}
		if metricLine(t, srv.URL, "heartbeat_tokenless_pushes_total") != "heartbeat_tokenless_pushes_total 1" {
			t.Error("the accepted token-less push was not counted")
		}

		refused := []struct {
			name    string
			url     string
			headers []string
		}{
			{"address not allowed", url(elsewhere), nil},
			{"spoofed X-Forwarded-For from an untrusted peer", url(elsewhere), []string{"X-Forwarded-For: 10.0.0.5"}},
			{"allowance off (the default)", url(off), nil},
			{"wrong token from an allowed address", url(legacy), []string{bearer("wrong")}},
			{"other credentials from an allowed address", url(legacy), []string{"Authorization: Basic " + legacy.token}},
			{"unknown server", srv.URL + "/api/heartbeat/987654/", nil},
		}
		for _, c := range refused {
			a := call(t, "POST", c.url, "", c.headers...)
			if a.code != http.StatusUnauthorized || errorMessage(t, a) != "missing or invalid token" || a.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: %d %s, want the one 401", c.name, a.code, a.body)
			}
		}
		// A token is judged by the token: elsewhere's own one works from
		// an address its allowance does not cover.
		if a := call(t, "POST", url(elsewhere), "", bearer(elsewhere.token)); a.code != http.StatusOK {
			t.Errorf("token push from outside the token-less list = %d %s", a.code, a.body)
		}
		// Switching off works at once.
		if err := s.SetServerTokenless(context.Background(), legacy.id, nil); err != nil {
			t.Fatal(err)
		}
		if a := call(t, "POST", url(legacy), ""); a.code != http.StatusUnauthorized {
			t.Errorf("token-less push after switching off = %d %s", a.code, a.body)
		}
		if got := metricLine(t, srv.URL, "heartbeat_tokenless_pushes_total"); got != "heartbeat_tokenless_pushes_total 1" {
			t.Errorf("counter after refusals and a token push: %q, want 1", got)
		}
		snap, _ := s.Status(context.Background())
		for _, st := range snap.Servers {
			if st.Name == "off" && st.LastHeartbeat != nil {
				t.Error("a refused token-less push stored a heartbeat")
			}
		}
	})
}

// Behind a reverse proxy the TCP peer is the proxy: X-Forwarded-For is
// believed only when the peer is a trusted proxy, and then only up to the
// first hop that is not one (the rightmost untrusted hop).
func TestTokenlessPushBehindProxy(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		proxies, err := api.ParseTrustedProxies("127.0.0.1, 192.0.2.0/24")
		if err != nil {
			t.Fatal(err)
		}
		srv := serve(t, s, api.Options{TrustedProxies: proxies})
		legacy := addAgent(t, s, "legacy")
		allowTokenless(t, s, legacy.id, "10.0.0.5")
		u := srv.URL + "/api/heartbeat/" + strconv.FormatInt(legacy.id, 10) + "/"
		for _, c := range []struct {
			name    string
			headers []string
			code    int
		}{
			{"forwarded for the allowed address", []string{"X-Forwarded-For: 10.0.0.5"}, 200},
			{"through a second trusted proxy", []string{"X-Forwarded-For: 10.0.0.5, 192.0.2.7"}, 200},
			{"with a port", []string{"X-Forwarded-For: 10.0.0.5:41234"}, 200},
			{"client-written hops left of the real client are ignored", []string{"X-Forwarded-For: 203.0.113.9, 10.0.0.5"}, 200},
			{"the proxy saw another client", []string{"X-Forwarded-For: 10.0.0.5, 198.51.100.4"}, 401},
			{"no header: the proxy itself is the client", nil, 401},
			{"garbled hop", []string{"X-Forwarded-For: 10.0.0.5, not-an-ip"}, 401},
		} {
			a := call(t, "POST", u, "", c.headers...)
			if a.code != c.code {
				t.Errorf("%s: %d %s, want %d", c.name, a.code, a.body, c.code)
			}
		}
	})
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := api.ParseTrustedProxies(" 10.0.0.1, 192.0.2.9/24 ,::ffff:198.51.100.0/120,fd00::1")
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32"), netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("fd00::1/128")}
	if err != nil || len(got) != len(want) {
		t.Fatalf("ParseTrustedProxies = %v, %v; want %v", got, err, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("proxy %d = %v, want %v", i, got[i], want[i])
		}
	}
	if got, err := api.ParseTrustedProxies(""); got != nil || err != nil {
		t.Errorf("empty list = %v, %v; want none", got, err)
	}
	for _, bad := range []string{"proxy.example.net", "10.0.0.0/33", "10.0.0.1,", "0.0.0.0/0", "::/0"} {
		if _, err := api.ParseTrustedProxies(bad); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted it", bad)
		}
	}
}
