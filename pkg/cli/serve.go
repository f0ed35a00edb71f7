package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/config"
	"github.com/stacksense/heartbeat/pkg/evaluate"
	"github.com/stacksense/heartbeat/pkg/ping"
)

type serveOptions struct {
	Listen    string
	TLSCert   string
	TLSKey    string
	ReadToken string
	// AlertsToken and AlertsTokenFile guard POST /api/alerts and
	// /api/alertmanager (see config.ResolveAlertsToken).
	AlertsToken     string
	AlertsTokenFile string
	StaleAfter      time.Duration
	// MetricsPerServer keeps the per-server series on /metrics.
	MetricsPerServer bool
	ShutdownGrace    time.Duration
	BatchMax         int
	BatchWait        time.Duration
	BatchWriters     int
	// TrustedProxies is the raw --trusted-proxies list.
	TrustedProxies string
	Verbose        bool
	// EvaluateEvery is the interval of the evaluation rounds (0: none).
	EvaluateEvery time.Duration
	// PingURL is a dead-man's switch pinged after each healthy round.
	PingURL string
	// staleAfterSet: --stale-after was given (0 means each server's own).
	staleAfterSet bool
}

func newServeCommand(app *App, g *globalOptions) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve-api [--listen 127.0.0.1:8080] [--tls-cert F --tls-key F] [--read-token T]",
		Short: "Serve the heartbeat push API, the status API and page, and Prometheus metrics",
		Long: `Serves over HTTP (or HTTPS with --tls-cert and --tls-key):

  POST /api/heartbeat/ID/   a server pushes its heartbeat with its own token
                            (Authorization: Bearer TOKEN; see "servers token")
  GET  /api/servers         every server's status, as "status --json"
  GET  /api/servers/ID      one server's status
  GET  /                    the status page for people (refreshes every 15 s)
  GET  /metrics             Prometheus metrics
  GET  /healthz             200 when the store answers, 503 otherwise
  POST /api/alerts          raise or resolve an alert (needs the alerts token)
  POST /api/alertmanager    Prometheus Alertmanager's webhook (alerts token)

Every --evaluate-every (10s) it judges every server and records state
changes, as probe-ssh does at the end of each run, so installations whose
servers only push have history, uptime and notifications too.

With --read-token (or HEARTBEAT_READ_TOKEN), the status API, the page and
/metrics require that token: as a Bearer header, or for the page through a
login form that sets a session cookie. Pushes need the server's own token,
except from an address the server allows token-less pushes from (servers set
--allow-tokenless-from, for the source system's agent). Behind a reverse
proxy, name it with --trusted-proxies (or HEARTBEAT_TRUSTED_PROXIES): only
then is its X-Forwarded-For believed; otherwise the TCP peer is the client.
The alert endpoints need the alerts token (--alerts-token-file or
HEARTBEAT_ALERTS_TOKEN) as a Bearer header; without one they answer 403.

Runs until SIGINT or SIGTERM, then stops accepting, lets requests in flight
finish and exits 0.`,
		Example: `  heartbeat serve-api
  HEARTBEAT_READ_TOKEN=$(cat /etc/heartbeat/read-token) heartbeat serve-api --listen :8443 --tls-cert cert.pem --tls-key key.pem`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.staleAfterSet = cmd.Flags().Changed("stale-after")
			return runServe(cmd.Context(), app, g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address to listen on (host:port; :8080 for every interface)")
	f.StringVar(&o.TLSCert, "tls-cert", "", "serve HTTPS with this certificate (PEM; with --tls-key)")
	f.StringVar(&o.TLSKey, "tls-key", "", "private key of --tls-cert (PEM)")
	f.StringVar(&o.ReadToken, "read-token", "", "require this token to read status, the page and metrics (env HEARTBEAT_READ_TOKEN; prefer the env: flags show in ps)")
	f.StringVar(&o.AlertsToken, "alerts-token", "", "enable POST /api/alerts and /api/alertmanager with this Bearer token (env HEARTBEAT_ALERTS_TOKEN; prefer the env or --alerts-token-file: flags show in ps)")
	f.StringVar(&o.AlertsTokenFile, "alerts-token-file", "", "read the alerts token from this file (trimmed)")
	f.DurationVar(&o.StaleAfter, "stale-after", 0, "judge every server with this window instead of its own (servers add/set --stale-after; default 60s)")
	f.DurationVar(&o.EvaluateEvery, "evaluate-every", evaluate.DefaultInterval, "judge the fleet and record state changes this often (0: never; then run heartbeat evaluate or probe-ssh)")
	f.StringVar(&o.PingURL, "ping-url", "", "dead-man's switch pinged after each healthy evaluation round (env HEARTBEAT_PING_URL)")
	f.BoolVar(&o.MetricsPerServer, "metrics-per-server", true, "export per-server series on /metrics (status, age, latency, failures, phases); false keeps only fleet totals, for big fleets")
	f.DurationVar(&o.ShutdownGrace, "shutdown-grace", api.DefaultShutdownGrace, "on SIGINT/SIGTERM, how long requests in flight get to finish")
	f.IntVar(&o.BatchMax, "batch-max", api.DefaultBatchMax, "most pushes written in one store transaction")
	f.DurationVar(&o.BatchWait, "batch-wait", api.DefaultBatchWait, "how long a batch waits for more pushes after its first (0: write what is queued at once)")
	f.IntVar(&o.BatchWriters, "batch-writers", api.DefaultWriters, "batches in flight to the store at once")
	f.StringVar(&o.TrustedProxies, "trusted-proxies", "", "reverse proxies (CIDR[,CIDR]) whose X-Forwarded-For names the client, for token-less pushes (env HEARTBEAT_TRUSTED_PROXIES; default none)")
	f.BoolVarP(&o.Verbose, "verbose", "v", false, "log every request (debug level)")
	return cmd
}

func runServe(ctx context.Context, app *App, g *globalOptions, o *serveOptions) error {
	switch {
	case (o.TLSCert == "") != (o.TLSKey == ""):
		return usageErrorf("--tls-cert and --tls-key go together")
	case o.staleAfterSet && o.StaleAfter <= 0:
		return usageErrorf("--stale-after must be positive, got %s", o.StaleAfter)
	case o.EvaluateEvery < 0 || (o.EvaluateEvery > 0 && o.EvaluateEvery < time.Second):
		return usageErrorf("--evaluate-every must be 0 (off) or at least 1s, got %s", o.EvaluateEvery)
	case o.ShutdownGrace <= 0:
		return usageErrorf("--shutdown-grace must be positive, got %s", o.ShutdownGrace)
	case o.BatchMax <= 0 || o.BatchWriters <= 0 || o.BatchWait < 0:
		return usageErrorf("--batch-max and --batch-writers must be positive and --batch-wait not negative")
	}
	proxies, err := api.ParseTrustedProxies(config.ResolveTrustedProxies(o.TrustedProxies, app.Getenv))
	if err != nil {
		return usageErrorf("--trusted-proxies: %v", err)
	}
	if o.TLSCert != "" {
		// Fail now, with the file named, rather than on the first handshake.
		if _, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey); err != nil {
			return fmt.Errorf("load TLS certificate %s and key %s: %w", o.TLSCert, o.TLSKey, err)
		}
	}
	if o.PingURL == "" {
		o.PingURL = app.Getenv("HEARTBEAT_PING_URL")
	}
	var pinger *ping.Pinger
	if o.PingURL != "" {
		var err error
		if pinger, err = ping.New(o.PingURL); err != nil {
			return usageErrorf("--ping-url: %v", err)
		}
	}
	alertsToken, err := config.ResolveAlertsToken(o.AlertsToken, o.AlertsTokenFile, app.Getenv)
	if err != nil {
		return usageErrorf("%v", err)
	}
	readToken := config.ResolveReadToken(o.ReadToken, app.Getenv)
	if alertsToken != "" && alertsToken == readToken {
		// The read token also opens the page and may sit in a browser;
		// it must not also be able to write.
		return usageErrorf("the alerts token must differ from the read token")
	}
	if o.Verbose {
		g.logLevel.Set(slog.LevelDebug)
	}
	log := g.log
	s, err := openStore(ctx, app, g)
	if err != nil {
		return err
	}
	defer s.Close()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	a := api.New(s, api.Options{
		ReadToken: readToken, AlertsToken: alertsToken, StaleAfter: o.StaleAfter, NoPerServerMetrics: !o.MetricsPerServer, Logger: log, SecureCookie: o.TLSCert != "",
		BatchMax: o.BatchMax, BatchWait: batchWait(o.BatchWait), Writers: o.BatchWriters, TrustedProxies: proxies,
	})
	defer a.Close()
	scheme := "http"
	if o.TLSCert != "" {
		scheme = "https"
	}
	log.Info("serving", "url", scheme+"://"+ln.Addr().String(), "read_token_required", readToken != "", "alerts_enabled", alertsToken != "", "trusted_proxies", len(proxies))
	if o.EvaluateEvery > 0 {
		ectx, stop := context.WithCancel(ctx)
		defer stop()
		go evaluate.Every(ectx, s, o.EvaluateEvery, evaluate.Options{Log: log}, func(res evaluate.Result, err error) {
			if err != nil {
				log.Warn("evaluation round failed; the next one records what it missed", "err", err)
				if pinger != nil {
					if perr := pinger.Fail(ectx, oneLine(err)); perr != nil {
						log.Warn("dead-man's switch", "err", perr)
					}
				}
				return
			}
			if pinger != nil {
				if perr := pinger.Success(ectx, fmt.Sprintf("evaluated: %d change(s)", len(res.Flips))); perr != nil {
					log.Warn("dead-man's switch", "err", perr)
				}
			}
		})
	}
	if err := api.Serve(ctx, api.NewHTTPServer(a, log), ln, o.TLSCert, o.TLSKey, o.ShutdownGrace); err != nil {
		return err
	}
	log.Info("stopped: requests in flight finished")
	return nil
}

// batchWait maps the flag's 0 ("no wait") to api.Options' negative, where
// 0 means the default.
func batchWait(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
