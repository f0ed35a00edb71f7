package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/api"
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

// pushAttemptError is the outcome of one failed attempt.
type pushAttemptError struct {
	msg   string
	retry bool
}

func (e *pushAttemptError) Error() string { return e.msg }

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
	body, err := json.Marshal(api.PushRequest{AgentVersion: version})
	if err != nil {
		return fmt.Errorf("encode push: %w", err)
	}
	endpoint := strings.TrimRight(cfg.URL, "/") + "/api/heartbeat/" + strconv.FormatInt(cfg.ServerID, 10) + "/"
	client := &http.Client{
		// A redirect would turn the POST into a GET or carry the token
		// elsewhere; report it instead, so the admin fixes the URL.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	wait := o.RetryWait
	var last error
	for attempt := 0; attempt <= o.Retries; attempt++ {
		if attempt > 0 {
			// ±20% jitter, so a fleet started by one timer does not retry
			// in lockstep.
			d := time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
			select {
			case <-ctx.Done():
				return fmt.Errorf("push heartbeat for server %d: %w (last error: %v)", cfg.ServerID, ctx.Err(), last)
			case <-time.After(d):
			}
			wait *= 2
		}
		resp, err := pushOnce(ctx, client, endpoint, cfg.Token, body, o.Timeout)
		if err == nil {
			if o.Verbose {
				_, err = fmt.Fprintf(app.Out, "heartbeat stored for server %s (id %d) at %s\n",
					resp.ServerName, resp.ServerID, resp.Timestamp.UTC().Format(time.RFC3339Nano))
			}
			return err
		}
		last = err
		var ae *pushAttemptError
		if !errors.As(err, &ae) || !ae.retry || ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("push heartbeat for server %d to %s: %v", cfg.ServerID, endpoint, last)
}

// pushOnce makes one attempt.
func pushOnce(ctx context.Context, client *http.Client, endpoint, token string, body []byte, timeout time.Duration) (api.PushResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return api.PushResponse{}, &pushAttemptError{msg: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error names the method and URL, never the headers.
		return api.PushResponse{}, &pushAttemptError{msg: err.Error(), retry: true}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return api.PushResponse{}, &pushAttemptError{msg: "read answer: " + err.Error(), retry: true}
	}
	if resp.StatusCode != http.StatusOK {
		msg := resp.Status
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			msg += ": " + e.Error
		}
		if loc := resp.Header.Get("Location"); loc != "" {
			msg += " (redirected to " + loc + "; use that URL)"
		}
		return api.PushResponse{}, &pushAttemptError{msg: "server answered " + msg, retry: resp.StatusCode >= 500}
	}
	var ok api.PushResponse
	if err := json.Unmarshal(raw, &ok); err != nil || ok.Status != "ok" || !ok.HeartbeatReceived {
		return api.PushResponse{}, &pushAttemptError{msg: "server answered 200 but not a heartbeat receipt; is the URL a heartbeat serve-api?"}
	}
	return ok, nil
}
