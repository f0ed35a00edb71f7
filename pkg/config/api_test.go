package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolvePush(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("from-file\n"), 0o600)
	cases := []struct {
		name        string
		flagURL     string
		flagID      int64
		flagToken   string
		flagFile    string
		env         map[string]string
		want        Push
		errContains string
	}{
		{name: "flags", flagURL: "http://a", flagID: 3, flagToken: "t", want: Push{"http://a", 3, "t"}},
		{name: "heartbeat env", env: map[string]string{"HEARTBEAT_API_URL": "https://b", "STACKSENSE_SERVER_ID": "7", "HEARTBEAT_TOKEN": "e"}, want: Push{"https://b", 7, "e"}},
		{name: "seed env", env: map[string]string{"STACKSENSE_API_URL": "http://c", "STACKSENSE_SERVER_ID": " 1 ", "HEARTBEAT_TOKEN": "e"}, want: Push{"http://c", 1, "e"}},
		{name: "flag beats env", flagURL: "http://flag", flagID: 2, flagToken: "f", env: map[string]string{"HEARTBEAT_API_URL": "http://env", "STACKSENSE_SERVER_ID": "9", "HEARTBEAT_TOKEN": "e"}, want: Push{"http://flag", 2, "f"}},
		{name: "HEARTBEAT_API_URL beats STACKSENSE_API_URL", flagID: 1, flagToken: "t", env: map[string]string{"HEARTBEAT_API_URL": "http://hb", "STACKSENSE_API_URL": "http://ss"}, want: Push{"http://hb", 1, "t"}},
		{name: "token file beats env", flagURL: "http://a", flagID: 1, flagFile: tokenFile, env: map[string]string{"HEARTBEAT_TOKEN": "e"}, want: Push{"http://a", 1, "from-file"}},
		{name: "no url", flagID: 1, flagToken: "t", errContains: "no API URL"},
		{name: "bad scheme", flagURL: "ftp://a", flagID: 1, flagToken: "t", errContains: "must start with http://"},
		{name: "no id", flagURL: "http://a", flagToken: "t", errContains: "no server id"},
		{name: "bad id", flagURL: "http://a", flagToken: "t", env: map[string]string{"STACKSENSE_SERVER_ID": "x"}, errContains: "is not a server id"},
		{name: "negative id", flagURL: "http://a", flagID: -2, flagToken: "t", errContains: "must be positive"},
		{name: "no token", flagURL: "http://a", flagID: 1, errContains: "no API token"},
		{name: "missing token file", flagURL: "http://a", flagID: 1, flagFile: "/nonexistent/token", errContains: "read --token-file"},
	}
	for _, c := range cases {
		got, err := ResolvePush(c.flagURL, c.flagID, c.flagToken, c.flagFile, func(k string) string { return c.env[k] })
		if c.errContains != "" {
			if err == nil || !strings.Contains(err.Error(), c.errContains) {
				t.Errorf("%s: error %v, want one containing %q", c.name, err, c.errContains)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
}

func TestResolveReadToken(t *testing.T) {
	t.Parallel()
	env := func(k string) string { return map[string]string{"HEARTBEAT_READ_TOKEN": "env"}[k] }
	if got := ResolveReadToken("flag", env); got != "flag" {
		t.Errorf("flag: %q", got)
	}
	if got := ResolveReadToken("", env); got != "env" {
		t.Errorf("env: %q", got)
	}
	if got := ResolveReadToken("", func(string) string { return "" }); got != "" {
		t.Errorf("unset: %q", got)
	}
}

func TestResolveTrustedProxies(t *testing.T) {
	t.Parallel()
	env := func(v string) Getenv {
		return func(k string) string {
			if k == "HEARTBEAT_TRUSTED_PROXIES" {
				return v
			}
			return ""
		}
	}
	for _, c := range []struct{ flag, env, want string }{
		{"", "", ""},
		{"", "10.0.0.1", "10.0.0.1"},
		{"192.0.2.0/24", "10.0.0.1", "192.0.2.0/24"},
	} {
		if got := ResolveTrustedProxies(c.flag, env(c.env)); got != c.want {
			t.Errorf("ResolveTrustedProxies(%q) with env %q = %q, want %q", c.flag, c.env, got, c.want)
		}
	}
}

func TestResolveAlertsToken(t *testing.T) {
	env := func(k string) string { return map[string]string{"HEARTBEAT_ALERTS_TOKEN": "env"}[k] }
	none := func(string) string { return "" }
	file := filepath.Join(t.TempDir(), "alerts-token")
	if err := os.WriteFile(file, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		flag, file string
		env        Getenv
		want       string
		wantErr    string
	}{
		{flag: "flag", env: env, want: "flag"},
		{file: file, env: env, want: "from-file"},
		{env: env, want: "env"},
		{env: none, want: ""},
		{flag: "flag", file: file, env: env, wantErr: "alternatives"},
		{file: empty, env: env, wantErr: "is empty"},
		{file: filepath.Join(t.TempDir(), "missing"), env: env, wantErr: "read --alerts-token-file"},
	} {
		got, err := ResolveAlertsToken(tt.flag, tt.file, tt.env)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ResolveAlertsToken(%q, %q) error = %v, want %q", tt.flag, tt.file, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ResolveAlertsToken(%q, %q) = %q, %v; want %q", tt.flag, tt.file, got, err, tt.want)
		}
	}
}
