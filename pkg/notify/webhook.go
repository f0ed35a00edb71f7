package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stacksense/heartbeat/pkg/output"
)

// Headers of a webhook delivery.
const (
	SignatureHeader      = "X-Heartbeat-Signature"       // "sha256=<hex HMAC-SHA256 of the body>"
	IdempotencyKeyHeader = "X-Heartbeat-Idempotency-Key" // Message.Key, as in the body
	UserAgent            = "heartbeat-notify/1"
)

// maxErrorBody is how much of a refusing receiver's answer an error
// quotes: enough for "invalid signature", not a whole HTML error page.
const maxErrorBody = 200

// webhook posts the JSON payload to a receiver of ours.
type webhook struct {
	target   string // the http(s) URL without userinfo
	redacted string // for errors
	user     *url.Userinfo
	secret   string
	timeout  time.Duration
	client   *http.Client
}

func newWebhook(rawURL, secret string, o options) (*webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %s does not parse", ErrBadURL, Redact(rawURL))
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: %s has no host", ErrBadURL, Redact(rawURL))
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("%w: %s has a #fragment, which is never sent", ErrBadURL, Redact(rawURL))
	}
	u.Scheme = strings.TrimPrefix(strings.ToLower(u.Scheme), "webhook+")
	user := u.User
	u.User = nil
	w := &webhook{target: u.String(), redacted: Redact(rawURL), user: user, secret: secret, timeout: o.timeout}
	w.client = &http.Client{Transport: webhookTransport, CheckRedirect: sameOriginRedirect}
	return w, nil
}

// webhookTransport is shared by every webhook sender so that connections
// to one receiver are reused across messages and senders (a drain of a
// thousand messages opens a handful of connections, and senders made and
// dropped per message leave no idle connections of their own behind). It
// holds connections only, no settings of any channel.
var webhookTransport = http.DefaultTransport.(*http.Transport).Clone()

// sameOriginRedirect follows only 307 and 308 (which resend the POST body)
// to the same scheme and host: a 301/302/303 would turn the POST into a
// body-less GET whose 2xx would be taken for a delivery, and another host
// was not given the channel's trust (or a downgrade to http its body).
func sameOriginRedirect(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	code := 0
	if req.Response != nil {
		code = req.Response.StatusCode
	}
	if len(via) >= 5 || (code != http.StatusTemporaryRedirect && code != http.StatusPermanentRedirect) ||
		req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return http.ErrUseLastResponse
	}
	return nil
}

func (w *webhook) Send(ctx context.Context, m Message) error {
	body, err := marshalPayload(m, time.Now())
	if err != nil {
		return fmt.Errorf("encode webhook payload: %w", err)
	}
	parent := ctx
	ctx, cancel := deadline(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", w.redacted, ErrBadURL)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(IdempotencyKeyHeader, m.Key())
	if w.secret != "" {
		req.Header.Set(SignatureHeader, Sign(body, w.secret))
	}
	if w.user != nil {
		pass, _ := w.user.Password()
		req.SetBasicAuth(w.user.Username(), pass)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// A *url.Error quotes the whole URL, whose path may be a token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("webhook %s: %w", w.redacted, stopped(parent, ctx, w.timeout))
		}
		return fmt.Errorf("webhook %s: %w", w.redacted, err)
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
	// Drain a little more so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return fmt.Errorf("webhook %s: HTTP %d%s", w.redacted, resp.StatusCode, quoteBody(head, resp.StatusCode))
}

// quoteBody is ": <first 200 bytes, escaped>" of a refusing receiver's
// answer, or a hint for an unfollowed redirect.
func quoteBody(head []byte, code int) string {
	var s string
	if code >= 300 && code < 400 {
		s = " (redirect not followed: only 307/308 to the same host are)"
	}
	text := strings.TrimSpace(string(head))
	if text == "" {
		return s
	}
	if len(text) > maxErrorBody {
		text = text[:maxErrorBody] + "…"
	}
	return s + ": " + output.Escape(text)
}

// Sign returns the value of the X-Heartbeat-Signature header for body:
// "sha256=" and the hex HMAC-SHA256 of the exact body bytes keyed with the
// channel secret.
func Sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature reports whether header (the X-Heartbeat-Signature value)
// is the signature of body with secret, comparing in constant time. An
// empty secret verifies nothing.
func VerifySignature(body []byte, header, secret string) bool {
	if secret == "" {
		return false
	}
	hexSum, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}
