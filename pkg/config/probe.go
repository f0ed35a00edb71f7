package config

import "path/filepath"

// ProbeCredentials is where probe-ssh finds its SSH identity.
type ProbeCredentials struct {
	// KeyPath is the explicit default key ("" if none was given).
	KeyPath string
	// KeyOrigin names where KeyPath came from, for error messages.
	KeyOrigin string
	// AgentSocket is the ssh-agent socket ("" if none).
	AgentSocket string
	// User is the default SSH login.
	User string
	// KnownHosts is the known_hosts file for the known-hosts policy.
	KnownHosts string
}

// ResolveProbeCredentials applies the documented order: --key, then
// HEARTBEAT_SSH_KEY, then the source system's SSH_PRIVATE_KEY_PATH (the
// agent and ~/.ssh defaults are the prober's fallbacks); --user, then
// HEARTBEAT_SSH_USER, then currentUser; --known-hosts, then
// ~/.ssh/known_hosts.
func ResolveProbeCredentials(flagKey, flagUser, flagKnownHosts string, getenv Getenv, home, currentUser string) ProbeCredentials {
	c := ProbeCredentials{AgentSocket: getenv("SSH_AUTH_SOCK")}
	for _, k := range []struct{ origin, value string }{
		{"--key", flagKey},
		{"HEARTBEAT_SSH_KEY", getenv("HEARTBEAT_SSH_KEY")},
		{"SSH_PRIVATE_KEY_PATH", getenv("SSH_PRIVATE_KEY_PATH")},
	} {
		if k.value != "" {
			c.KeyPath, c.KeyOrigin = k.value, k.origin
			break
		}
	}
	c.User = firstNonEmpty(flagUser, getenv("HEARTBEAT_SSH_USER"), currentUser)
	c.KnownHosts = flagKnownHosts
	if c.KnownHosts == "" && home != "" {
		c.KnownHosts = filepath.Join(home, ".ssh", "known_hosts")
	}
	return c
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
