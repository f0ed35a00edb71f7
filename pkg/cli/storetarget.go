package cli

import (
	"time"

	"github.com/stacksense/heartbeat/pkg/config"
	"github.com/stacksense/heartbeat/pkg/store/backend"
)

// storeTarget translates the resolved store setting into what the store
// layer opens; the two packages do not know each other.
func storeTarget(cfg config.Store, connectTimeout time.Duration) backend.Target {
	return backend.Target{Engine: backend.Engine(cfg.Engine), URL: cfg.URL, Path: cfg.Path, ConnectTimeout: connectTimeout}
}
