package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/api/client"
	"github.com/stacksense/heartbeat/pkg/config"
)

type pushOptions struct {
	URL          string
	ServerID     int64
	Token        string
	TokenFile    string
	AgentVersion string
	Timeout      time.Duration
	Retries      int
	RetryWait    time.Duration
	Verbose      bool
}

func newPushCommand(app *App) *cobra.Command {
	o := &pushOptions{}
	cmd := &cobra.Command{
		Use:   "push --url URL --server-id ID [--token TOKEN] [--agent-version V]",
		Short: "Send this server's heartbeat to a heartbeat serve-api (for cron or a systemd timer)",
		Long: `Sends one heartbeat for this server to serve-api: POST URL/api/heartbeat/ID/
with the server's token (issued by "heartbeat servers token ID|NAME").

Network errors and 5xx answers are retried a few times with growing waits;
4xx answers (a wrong token, an unknown server) are not. Quiet on success;
exit 0 when the heartbeat was stored, 1 otherwise with the server's message,
64 for missing or bad settings.`,
		Example: `  HEARTBEAT_TOKEN=… heartbeat push --url https://monitor.example.net --server-id 42
  STACKSENSE_API_URL=http://monitor:8080 STACKSENSE_SERVER_ID=1 HEARTBEAT_TOKEN=… heartbeat push`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPush(cmd.Context(), app, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", "", "serve-api base URL, e.g. https://monitor:8080 (env HEARTBEAT_API_URL, STACKSENSE_API_URL)")
	f.Int64Var(&o.ServerID, "server-id", 0, "this server's id (env STACKSENSE_SERVER_ID)")
	f.StringVar(&o.Token, "token", "", "this server's API token (env HEARTBEAT_TOKEN; prefer it or --token-file: flags show in ps)")
	f.StringVar(&o.TokenFile, "token-file", "", "read the API token from this file")
	f.StringVar(&o.AgentVersion, "agent-version", "", "agent version to report (default: this heartbeat's version)")
	f.DurationVar(&o.Timeout, "timeout", 10*time.Second, "limit for one attempt")
	f.IntVar(&o.Retries, "retries", 3, "retries after a network error or 5xx answer")
	f.DurationVar(&o.RetryWait, "retry-wait", time.Second, "wait before the first retry; doubles each time")
	f.BoolVarP(&o.Verbose, "verbose", "v", false, "print what the server answered")
	return cmd
}

func runPush(ctx context.Context, app *App, o *pushOptions) error {
	switch {
	case o.Timeout <= 0:
		return usageErrorf("--timeout must be positive, got %s", o.Timeout)
	case o.Retries < 0:
		return usageErrorf("--retries must not be negative, got %d", o.Retries)
	case o.RetryWait < 0:
		return usageErrorf("--retry-wait must not be negative, got %s", o.RetryWait)
	}
	cfg, err := config.ResolvePush(o.URL, o.ServerID, o.Token, o.TokenFile, app.Getenv)
	if err != nil {
		return usageErrorf("%v", err)
	}
	version := o.AgentVersion
	if version == "" {
		version = "heartbeat/" + app.Version
	}
	if len(version) > api.MaxAgentVersion {
		return usageErrorf("--agent-version is longer than %d bytes", api.MaxAgentVersion)
	}
	c := &client.Client{BaseURL: cfg.URL, Token: cfg.Token, AttemptTimeout: o.Timeout, Retries: o.Retries, RetryWait: o.RetryWait}
	resp, err := c.Push(ctx, cfg.ServerID, version)
	if err != nil {
		return err
	}
	if o.Verbose {
		_, err = fmt.Fprintf(app.Out, "heartbeat stored for server %s (id %d) at %s\n",
			resp.ServerName, resp.ServerID, resp.Timestamp.UTC().Format(time.RFC3339Nano))
	}
	return err
}
