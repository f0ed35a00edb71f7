package proberun

import (
	"context"
	"fmt"

	"github.com/stacksense/heartbeat/pkg/probe"
	"github.com/stacksense/heartbeat/pkg/store"
)

// Targets turns the servers a run is responsible for (enabled, mode ssh)
// into probe targets, filling in defaultUser where a server has no user of
// its own. doctor uses it to check exactly the keys a run would load.
func Targets(servers []store.Server, defaultUser string) []probe.Target {
	targets, _ := buildTargets(servers, defaultUser)
	return targets
}

// Credentials says where a run's default SSH identity comes from.
type Credentials struct {
	// Auth is the default identity's settings.
	Auth probe.AuthConfig
	// KeyOrigin names the setting that chose Auth.KeyPath, for errors.
	KeyOrigin string
	// RequireDefault loads the default identity even when every target
	// has its own key (doctor, when it cannot list the servers or there
	// are none: the next server registered will need it).
	RequireDefault bool
}

// LoadCredentials reads and checks every credential a run will use before
// any server is contacted: a bad key stops the run with one line instead of
// failing every server. The default credentials are only required when
// some target has no key of its own (or c.RequireDefault is set).
func LoadCredentials(ctx context.Context, c Credentials, targets []probe.Target) (*probe.Auth, error) {
	needDefault := c.RequireDefault
	for _, t := range targets {
		needDefault = needDefault || t.KeyPath == ""
	}
	auth := probe.NewAuth("per-server keys")
	if needDefault {
		var err error
		auth, err = probe.LoadAuth(ctx, c.Auth)
		if err != nil {
			if c.KeyOrigin != "" {
				err = fmt.Errorf("%w (key set by %s)", err, c.KeyOrigin)
			}
			return nil, err
		}
	}
	if err := auth.LoadTargetKeys(ctx, targets); err != nil {
		auth.Close()
		return nil, fmt.Errorf("per-server keys: %w", err)
	}
	return auth, nil
}
