// Package notify delivers one message about server state changes to one
// notification channel, named by a URL: our own signed JSON webhook
// (webhook+https://, webhook+http://), a local script (exec:/path), or any
// service shoutrrr knows (slack://, discord://, teams://, telegram://,
// ntfy://, gotify://, pushover://, matrix://, smtp://, generic+https://, …).
//
// It knows nothing of the store or of when to notify: the evaluation and
// drain code decides which events a channel is told about, groups storms,
// records attempts and retries; this package only renders and sends, and
// says whether the channel took the message. Delivery is at-least-once, so
// every message carries an idempotency key receivers can drop duplicates by.
package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Event kinds: what happened, as a channel is told about it.
const (
	KindDown        = "down"        // the server went OFFLINE
	KindUp          = "up"          // the server came back (ONLINE)
	KindWarning     = "warning"     // the server entered or left WARNING
	KindMaintenance = "maintenance" // a maintenance window started or ended
	KindReminder    = "reminder"    // the server is still down (--remind)
	KindCutOff      = "cutoff"      // the monitoring host was cut off: no down-flips recorded
	KindTest        = "test"        // `notify test`: a clearly marked test message
)

// Event is one state change (a "flip") or a reminder, as a channel is told
// about it.
type Event struct {
	// ID is the flip id: with Kind (and At, for reminders) it makes the
	// idempotency key receivers use to drop duplicates (see Key).
	ID         int64
	Kind       string // one of the Kind constants
	ServerID   int64
	ServerName string // untrusted: escaped wherever it is rendered as text
	// Host is the server's address; for KindCutOff, the monitoring host
	// that was cut off.
	Host string
	// From and To are states: ONLINE, WARNING, OFFLINE, DISABLED,
	// MAINTENANCE ("" for cut-off and test events). A reminder has the
	// current state in both.
	From, To string
	// At is when the change happened (UTC); for a reminder, the time the
	// reminder was due, which must stay the same across retries because it
	// is part of the idempotency key.
	At time.Time
	// Reason says why, e.g. "no heartbeat for 60s; last probe: timeout: …".
	Reason string
	// DownFor is how long the server was (up events) or has been
	// (reminders) down; 0 if unknown.
	DownFor time.Duration
}

// Key is the event's idempotency key: "flip-<id>" for a state change,
// "flip-<id>-reminder-<unix seconds of At>" for a reminder (each reminder
// of one flip is a new message), "cutoff-<id>" for a cut-off event and
// "test-<unix nanoseconds of At>" for a test. A retried delivery carries
// the same key, so a receiver that has seen it can drop the duplicate.
func (e Event) Key() string {
	switch e.Kind {
	case KindReminder:
		return fmt.Sprintf("flip-%d-reminder-%d", e.ID, e.At.Unix())
	case KindCutOff:
		return fmt.Sprintf("cutoff-%d", e.ID)
	case KindTest:
		if e.At.IsZero() {
			return "test"
		}
		return fmt.Sprintf("test-%d", e.At.UnixNano())
	default:
		return fmt.Sprintf("flip-%d", e.ID)
	}
}

// Message is what one channel receives in one delivery: one event, or a
// grouped storm of many.
type Message struct {
	Events []Event
	// Grouped is set when the drain folded a storm (more than its limit of
	// events for one channel in one drain) into this one message.
	Grouped bool
	// Test marks a `notify test` message; receivers should not page on it.
	Test bool
	// Channel is the channel's name (shown in test messages); Source is
	// the host name of the heartbeat process that sends.
	Channel, Source string
}

// Key is the message's idempotency key: its event's key when it carries
// one event, else "group-" and a digest of its events' keys, so a retry of
// the same group has the same key (each event in the payload still carries
// its own key).
func (m Message) Key() string {
	if len(m.Events) == 1 {
		return m.Events[0].Key()
	}
	keys := make([]string, len(m.Events))
	for i, e := range m.Events {
		keys[i] = e.Key()
	}
	return "group-" + shortDigest(strings.Join(keys, ","))
}

// TestMessage is the message `notify test` sends: marked as a test in the
// text, the payload (test: true) and the environment of a script, with a
// key of its own so a receiver never drops it as a duplicate of a real
// event.
func TestMessage(channel, source string, at time.Time) Message {
	return Message{Test: true, Channel: channel, Source: source, Events: []Event{{Kind: KindTest, At: at.UTC()}}}
}

// Sender delivers messages to one channel.
type Sender interface {
	// Send delivers m once. A nil error means the channel accepted it; an
	// error says why not, in one line, with no secret of the channel URL
	// in it. Send returns when ctx is done, at the latest.
	Send(ctx context.Context, m Message) error
}

// ErrBadURL is wrapped by every error New returns for a URL it cannot use
// (unknown kind, malformed, relative exec path): the CLI maps it to exit
// 64. The error text never contains the URL's secrets.
var ErrBadURL = errors.New("bad channel URL")

// DefaultTimeout caps one delivery attempt when the caller's context allows
// longer, and is the hard limit of an exec script.
const DefaultTimeout = 10 * time.Second

// Option adjusts a Sender made by New.
type Option func(*options)

type options struct {
	timeout time.Duration
}

// WithTimeout sets the limit of one delivery attempt (default
// DefaultTimeout): the exec script is killed, the HTTP request abandoned.
// Tests use it to see the limit work in a second.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// New returns the Sender for a channel URL. secret is the channel's
// signing secret; only webhook channels use it (an empty secret sends no
// signature header). New does no I/O: a URL that parses may still fail to
// deliver. Errors wrap ErrBadURL.
func New(rawURL, secret string, opts ...Option) (Sender, error) {
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	kind, err := ChannelKind(rawURL)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "webhook":
		return newWebhook(rawURL, secret, o)
	case "exec":
		return newExec(rawURL, o)
	default:
		return newShoutrrr(rawURL, o)
	}
}

// ChannelKind returns the kind of channel a URL names, for display and metrics
// labels: "webhook", "exec", or the shoutrrr service ("slack", "smtp",
// "generic", …). It does not check the rest of the URL; New does.
func ChannelKind(rawURL string) (string, error) {
	if strings.TrimSpace(rawURL) != rawURL || rawURL == "" {
		return "", fmt.Errorf("%w: empty, or leading or trailing spaces", ErrBadURL)
	}
	scheme, _, ok := strings.Cut(rawURL, ":")
	if !ok || scheme == "" {
		return "", fmt.Errorf("%w: %q has no scheme (want e.g. webhook+https://…, exec:/path, slack://…)", ErrBadURL, Redact(rawURL))
	}
	scheme = strings.ToLower(scheme)
	if !validScheme(scheme) {
		return "", fmt.Errorf("%w: malformed scheme in %q", ErrBadURL, Redact(rawURL))
	}
	switch {
	case scheme == "webhook+https" || scheme == "webhook+http":
		return "webhook", nil
	case scheme == "exec":
		return "exec", nil
	}
	service, _, _ := strings.Cut(scheme, "+")
	if !shoutrrrKnows(service) {
		return "", fmt.Errorf("%w: unknown channel kind %q (want webhook+https, webhook+http, exec, or a shoutrrr service such as slack, discord, teams, telegram, ntfy, gotify, pushover, matrix, smtp, generic)", ErrBadURL, service)
	}
	return service, nil
}

// validScheme is RFC 3986's scheme syntax.
func validScheme(s string) bool {
	for i, c := range s {
		letter := c >= 'a' && c <= 'z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// deadline returns ctx limited to d, one attempt's time limit.
func deadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// stopped says why an attempt was cut short: the caller's context (its
// budget ran out, or it was cancelled) or the attempt's own limit. The
// result wraps the context error, so errors.Is(err,
// context.DeadlineExceeded) holds for both time-outs.
func stopped(parent, attempt context.Context, limit time.Duration) error {
	if err := parent.Err(); err != nil {
		return fmt.Errorf("stopped by the caller: %w", context.Cause(parent))
	}
	return fmt.Errorf("no result within the %s limit: %w", limit, context.Cause(attempt))
}
