package cli_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// postBare posts what the source system's agent posts: JSON, no token.
func postBare(t *testing.T, url string, headers ...string) int {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(`{"agent_version": "1.0.0"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// serve-api believes X-Forwarded-For only from the proxies it is given
// (flag or HEARTBEAT_TRUSTED_PROXIES), so a token-less push for a server
// that allows 10.0.0.5 is accepted through a trusted proxy on loopback and
// refused when the same header comes from a peer nobody named.
func TestServeTrustedProxies(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "legacy", "--host", "10.0.0.5")
		e.mustRun("servers", "set", "legacy", "--allow-tokenless-from", "host")

		base, stop := e.startServe()
		if code := postBare(t, base+"/api/heartbeat/1/", "X-Forwarded-For: 10.0.0.5"); code != 401 {
			t.Errorf("spoofed X-Forwarded-For without trusted proxies: %d, want 401", code)
		}
		stop()

		e.vars["HEARTBEAT_TRUSTED_PROXIES"] = "127.0.0.1/32"
		base, _ = e.startServe()
		if code := postBare(t, base+"/api/heartbeat/1/", "X-Forwarded-For: 10.0.0.5"); code != 200 {
			t.Errorf("token-less push through a trusted proxy: %d, want 200", code)
		}
		if code := postBare(t, base+"/api/heartbeat/1/", "X-Forwarded-For: 10.0.0.5, 198.51.100.9"); code != 401 {
			t.Errorf("token-less push for another client through the proxy: %d, want 401", code)
		}
		st, _, err := e.open().ServerStatus(context.Background(), 1)
		if err != nil || st.LastHeartbeat == nil || st.AgentVersion != "1.0.0" {
			t.Errorf("the accepted token-less push is not stored: %+v, %v", st.Heartbeat, err)
		}

		e.expectFail(64, `trusted proxy "proxy.example.net" is not an IP address`, "serve-api", "--trusted-proxies", "proxy.example.net")
		e.vars["HEARTBEAT_TRUSTED_PROXIES"] = "0.0.0.0/0"
		e.expectFail(64, "every address", "serve-api")
	})
}
