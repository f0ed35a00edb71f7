package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/stacksense/heartbeat/pkg/probe"
	"github.com/stacksense/heartbeat/pkg/proberun"
)

// checkKey loads credentials exactly as probe-ssh does, with proberun's
// own helpers: the default identity (needed unless every enabled server
// has its own key) and every per-server key file.
func (d *doctor) checkKey(ctx context.Context, storeUp bool) Result {
	r := Result{Check: CheckSSHKey}
	targets := proberun.Targets(d.servers, "")
	// Without the server list, or with no server yet, the default key is
	// the one the next run (or the next registered server) will use.
	requireDefault := !storeUp || d.serversErr != nil || len(targets) == 0
	usesDefault := requireDefault
	for _, t := range targets {
		usesDefault = usesDefault || t.KeyPath == ""
	}
	auth, err := proberun.LoadCredentials(ctx, proberun.Credentials{Auth: d.cfg.Auth, KeyOrigin: d.cfg.KeyOrigin, RequireDefault: requireDefault}, targets)
	if err != nil {
		r.Status, r.Message = Fail, strings.ReplaceAll(err.Error(), "\n", "; ")
		r.Fix = "give probe-ssh a private key only its user can read (chmod 600), with no passphrase or loaded into ssh-agent; " +
			"name it with --key, HEARTBEAT_SSH_KEY or SSH_PRIVATE_KEY_PATH, or put it at ~/.ssh/id_ed25519 (Ed25519 recommended)"
		return r
	}
	defer auth.Close()
	r.Status, r.Message = OK, "default credentials: "+auth.Source()
	if !usesDefault {
		r.Message = "no default key needed: every enabled server has its own"
	}
	if n := len(distinctKeys(targets)); n > 0 {
		r.Message += fmt.Sprintf("; %d per-server key file(s) readable", n)
	}
	return r
}

func distinctKeys(targets []probe.Target) map[string]bool {
	m := map[string]bool{}
	for _, t := range targets {
		if t.KeyPath != "" {
			m[t.KeyPath] = true
		}
	}
	return m
}
