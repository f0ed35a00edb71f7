package proberun

import (
	"context"
	"fmt"
	"log/slog"

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
// any server is contacted: a bad default key stops the run with one line
// instead of failing every server. The default credentials are only
// required when some target has no key of its own (or c.RequireDefault is
// set). A bad per-server key is an error here too (doctor reports it);
// a probe run uses loadRunCredentials, which lets that server fail alone.
func LoadCredentials(ctx context.Context, c Credentials, targets []probe.Target) (*probe.Auth, error) {
	auth, err := loadDefault(ctx, c, targets)
	if err != nil {
		return nil, err
	}
	if err := auth.LoadTargetKeys(ctx, targets); err != nil {
		auth.Close()
		return nil, fmt.Errorf("per-server keys: %w", err)
	}
	return auth, nil
}

// loadRunCredentials is LoadCredentials for a probe run: a missing default
// credential still stops the run, but a per-server key that cannot be
// loaded only fails the servers using it (class key, at probe time), so one
// typo in `servers add --key` does not leave the whole fleet unprobed. The
// bad keys are parsed (and their errors cached) here, once, and logged.
func loadRunCredentials(ctx context.Context, c Credentials, targets []probe.Target, log *slog.Logger) (*probe.Auth, error) {
	auth, err := loadDefault(ctx, c, targets)
	if err != nil {
		return nil, err
	}
	if err := auth.LoadTargetKeys(ctx, targets); err != nil {
		log.Debug("per-server keys: the servers using these fail with class key", "err", err)
	}
	return auth, nil
}

func loadDefault(ctx context.Context, c Credentials, targets []probe.Target) (*probe.Auth, error) {
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
	return auth, nil
}
