package cli

import (
	"time"

	"github.com/stacksense/heartbeat/pkg/config"
	"github.com/stacksense/heartbeat/pkg/redact"
	"github.com/stacksense/heartbeat/pkg/store/backend"
)

// storeTarget translates the resolved store setting into what the store
// layer opens; the two packages do not know each other.
func storeTarget(cfg config.Store, connectTimeout time.Duration) backend.Target {
	return backend.Target{Engine: backend.Engine(cfg.Engine), URL: cfg.URL, Path: cfg.Path, ConnectTimeout: connectTimeout}
}

// storeDisplay names the resolved store for people (doctor, errors) with
// any password redacted. It lives here, not in config, so that config stays
// a leaf that imports nothing of ours.
func storeDisplay(cfg config.Store) string {
	if cfg.Engine == config.SQLite {
		return "sqlite:" + cfg.Path
	}
	return redact.ConnString(cfg.URL)
}
