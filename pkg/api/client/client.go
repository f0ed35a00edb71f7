// Package client is the HTTP client of heartbeat's API, the other half of
// pkg/api: what `heartbeat push` uses to send a server's heartbeat. It sits
// beside the server so that the two agree on paths and bodies by sharing
// api.PushRequest and api.PushResponse.
package client

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

	"github.com/stacksense/heartbeat/pkg/api"
)

// DefaultAttemptTimeout bounds one attempt when Client.AttemptTimeout is 0.
const DefaultAttemptTimeout = 10 * time.Second

// Client pushes heartbeats to one serve-api.
type Client struct {
	// BaseURL is the API's base URL (scheme, host, optional path prefix).
	BaseURL string
	// Token is the server's API token, sent as a Bearer token. Never log
	// it.
	Token string
	// AttemptTimeout bounds one attempt; 0 means DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// Retries is how many times a network error or a 5xx answer is
	// retried; 4xx answers are final.
	Retries int
	// RetryWait is the wait before the first retry, doubled each time,
	// with ±20% jitter; 0 retries at once.
	RetryWait time.Duration
	// HTTP is the client to use; nil means one that reports redirects
	// instead of following them.
	HTTP *http.Client
}

// attemptError is the outcome of one failed attempt.
type attemptError struct {
	msg   string
	retry bool
}

func (e *attemptError) Error() string { return e.msg }

// Push sends one heartbeat for serverID and returns the server's receipt.
// It retries network errors and 5xx answers; its error is one line naming
// the server id and the endpoint (never the token).
func (c *Client) Push(ctx context.Context, serverID int64, agentVersion string) (api.PushResponse, error) {
	body, err := json.Marshal(api.PushRequest{AgentVersion: agentVersion})
	if err != nil {
		return api.PushResponse{}, fmt.Errorf("encode push: %w", err)
	}
	endpoint := PushURL(c.BaseURL, serverID)
	httpc := c.HTTP
	if httpc == nil {
		httpc = &http.Client{
			// A redirect would turn the POST into a GET or carry the
			// token elsewhere; report it instead, so the admin fixes the
			// URL.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	timeout := c.AttemptTimeout
	if timeout <= 0 {
		timeout = DefaultAttemptTimeout
	}
	wait := c.RetryWait
	var last error
	for attempt := 0; attempt <= c.Retries; attempt++ {
		if attempt > 0 {
			// ±20% jitter, so a fleet started by one timer does not retry
			// in lockstep.
			d := time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return api.PushResponse{}, fmt.Errorf("push heartbeat for server %d: %w (last error: %v)", serverID, ctx.Err(), last)
			case <-t.C:
			}
			wait *= 2
		}
		resp, err := c.pushOnce(ctx, httpc, endpoint, body, timeout)
		if err == nil {
			return resp, nil
		}
		last = err
		var ae *attemptError
		if !errors.As(err, &ae) || !ae.retry || ctx.Err() != nil {
			break
		}
	}
	return api.PushResponse{}, fmt.Errorf("push heartbeat for server %d to %s: %v", serverID, endpoint, last)
}

// PushURL is the endpoint a push for serverID goes to under baseURL.
func PushURL(baseURL string, serverID int64) string {
	return strings.TrimRight(baseURL, "/") + "/api/heartbeat/" + strconv.FormatInt(serverID, 10) + "/"
}

// pushOnce makes one attempt.
func (c *Client) pushOnce(ctx context.Context, httpc *http.Client, endpoint string, body []byte, timeout time.Duration) (api.PushResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return api.PushResponse{}, &attemptError{msg: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := httpc.Do(req)
	if err != nil {
		// *url.Error names the method and URL, never the headers.
		return api.PushResponse{}, &attemptError{msg: err.Error(), retry: true}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return api.PushResponse{}, &attemptError{msg: "read answer: " + err.Error(), retry: true}
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
		return api.PushResponse{}, &attemptError{msg: "server answered " + msg, retry: resp.StatusCode >= 500}
	}
	var ok api.PushResponse
	if err := json.Unmarshal(raw, &ok); err != nil || ok.Status != "ok" || !ok.HeartbeatReceived {
		return api.PushResponse{}, &attemptError{msg: "server answered 200 but not a heartbeat receipt; is the URL a heartbeat serve-api?"}
	}
	return ok, nil
}
