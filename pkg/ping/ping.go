// Package ping tells an external dead-man's switch that the monitor itself
// is alive: after each healthy run, probe-ssh (and serve-api's evaluator)
// requests a URL the operator got from healthchecks.io, a self-hosted
// Healthchecks, an Uptime Kuma push monitor or anything that takes a GET.
// When the pings stop, that service tells someone the monitoring host
// died, which no check on the host itself can do.
package ping

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Timeout bounds one ping when the caller's context has no earlier
// deadline: a slow dead-man's switch must not hold a probe run.
const Timeout = 10 * time.Second

// Style is how a URL takes start and failure signals.
type Style int

const (
	// Plain URLs only get the success ping.
	Plain Style = iota
	// Healthchecks URLs (hc-ping.com, or a /ping/<uuid> path of a
	// self-hosted instance) take URL+"/start" and URL+"/fail", and the
	// message as the request body.
	Healthchecks
	// UptimeKuma push URLs (/api/push/<token>) take ?status=up|down&msg=.
	UptimeKuma
)

// Pinger pings one URL.
type Pinger struct {
	URL    *url.URL
	Style  Style
	Client *http.Client
}

// New parses a ping URL (http or https) and recognises its style.
func New(raw string) (*Pinger, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ping URL %q: want an http:// or https:// URL", redacted(raw))
	}
	p := &Pinger{URL: u, Client: &http.Client{Timeout: Timeout}}
	switch {
	case strings.Contains(u.Path, "/api/push/"):
		p.Style = UptimeKuma
	case u.Host == "hc-ping.com" || strings.HasPrefix(u.Path, "/ping/"):
		p.Style = Healthchecks
	}
	return p, nil
}

// Start signals that a run began, where the style supports it; a run
// that starts and never ends then shows as hung, not just late.
func (p *Pinger) Start(ctx context.Context) error {
	if p.Style != Healthchecks {
		return nil
	}
	return p.do(ctx, p.suffixed("/start"), "")
}

// Success signals a healthy run, with a one-line message.
func (p *Pinger) Success(ctx context.Context, msg string) error {
	switch p.Style {
	case UptimeKuma:
		return p.do(ctx, p.query("up", msg), "")
	case Healthchecks:
		return p.do(ctx, p.URL, msg)
	}
	return p.do(ctx, p.URL, "")
}

// Fail signals a failed run, where the style supports it; plain URLs get
// nothing, so their silence raises the alarm.
func (p *Pinger) Fail(ctx context.Context, msg string) error {
	switch p.Style {
	case UptimeKuma:
		return p.do(ctx, p.query("down", msg), "")
	case Healthchecks:
		return p.do(ctx, p.suffixed("/fail"), msg)
	}
	return nil
}

func (p *Pinger) suffixed(suffix string) *url.URL {
	u := *p.URL
	u.Path = strings.TrimSuffix(u.Path, "/") + suffix
	u.RawPath = ""
	return &u
}

func (p *Pinger) query(statusWord, msg string) *url.URL {
	u := *p.URL
	q := u.Query()
	q.Set("status", statusWord)
	q.Set("msg", msg)
	u.RawQuery = q.Encode()
	return &u
}

// do sends one ping: a POST with the message as its body when there is
// one (Healthchecks keeps it as the ping's log), else a GET.
func (p *Pinger) do(ctx context.Context, u *url.URL, body string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, Timeout)
		defer cancel()
	}
	method, rd := http.MethodGet, io.Reader(nil)
	if body != "" {
		method, rd = http.MethodPost, strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("ping %s: %w", redacted(u.String()), err)
	}
	req.Header.Set("User-Agent", "heartbeat")
	resp, err := p.Client.Do(req)
	if err != nil {
		// The URL's path is the check's secret: name the host only.
		return fmt.Errorf("ping %s: %s", redacted(u.String()), strings.ReplaceAll(err.Error(), u.String(), redacted(u.String())))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("ping %s: HTTP %d", redacted(u.String()), resp.StatusCode)
	}
	return nil
}

// redacted keeps a ping URL's scheme and host: its path and query carry
// the check's token, which anyone could use to fake pings.
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}
