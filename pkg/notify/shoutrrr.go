package notify

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/nicholas-fedor/shoutrrr/pkg/router"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"

	"github.com/stacksense/heartbeat/pkg/output"
)

// newService returns a new, unconfigured service of shoutrrr's for a
// scheme (no URL, no I/O); the router value holds nothing.
func newService(scheme string) (types.Service, error) {
	return (&router.ServiceRouter{}).NewService(scheme)
}

// shoutrrrKnows reports whether shoutrrr has a service of that scheme.
func shoutrrrKnows(scheme string) bool {
	_, err := newService(scheme)
	return err == nil
}

// titled are the services that show a title apart from the text (an
// e-mail subject, a push notification's heading, a card title). The
// others show only the body, which starts with the same headline, so
// giving them the title too would print it twice (Slack prepends it) or
// fail (a service whose config has no title key refuses the parameter).
var titled = []string{"smtp", "ntfy", "gotify", "pushover", "pushbullet", "bark", "join", "teams", "discord", "generic", "opsgenie", "ifttt", "lark"}

// shoutrrrSender sends through one shoutrrr service.
type shoutrrrSender struct {
	raw     string
	scheme  string
	opts    options
	display string
}

func newShoutrrr(rawURL string, o options) (*shoutrrrSender, error) {
	s := &shoutrrrSender{raw: rawURL, opts: o, display: Redact(rawURL)}
	scheme, _, _ := strings.Cut(strings.ToLower(rawURL), ":")
	s.scheme, _, _ = strings.Cut(scheme, "+")
	if slices.Contains(initLogsIn, s.scheme) {
		// Only the syntax can be checked without I/O.
		if u, err := url.Parse(rawURL); err != nil || u.Hostname() == "" {
			return nil, fmt.Errorf("%w: %s: no host", ErrBadURL, s.display)
		}
		return s, nil
	}
	if _, err := s.service(); err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrBadURL, s.display, err.Error())
	}
	return s, nil
}

// initLogsIn are the services whose Initialize talks to the server (matrix
// logs in with the user and password of the URL): New, which does no I/O,
// checks only their URL's syntax, and each Send initializes them.
var initLogsIn = []string{"matrix"}

// service parses the URL into a fresh, configured service. Each Send
// makes its own: shoutrrr services keep per-message parameters in their
// config, so one shared value would race between concurrent sends, and an
// abandoned send (ctx done) may still be using its value.
func (s *shoutrrrSender) service() (types.Service, error) {
	u, err := url.Parse(s.raw)
	if err != nil {
		return nil, errors.New("the URL does not parse")
	}
	scheme := s.scheme
	svc, err := newService(scheme)
	if err != nil {
		return nil, fmt.Errorf("unknown service %q", scheme)
	}
	if strings.ToLower(u.Scheme) != scheme {
		// A custom URL (generic+https://host/path): the service converts
		// it to its own form.
		custom, ok := svc.(types.CustomURLService)
		if !ok {
			return nil, fmt.Errorf("%s does not take a +scheme form", scheme)
		}
		if u, err = custom.GetConfigURLFromCustom(u); err != nil {
			return nil, errors.New(s.scrub(err.Error()))
		}
	}
	// A nil logger discards: shoutrrr logs URLs, which hold secrets.
	if err := svc.Initialize(u, nil); err != nil {
		return nil, errors.New(s.scrub(err.Error()))
	}
	return svc, nil
}

// Send renders m as text and hands it to the service. shoutrrr takes no
// context, so the send runs in a goroutine and Send returns when ctx (or
// the attempt's time limit) is done; the abandoned send ends by the
// service's own HTTP or SMTP timeout (10 s for most).
func (s *shoutrrrSender) Send(ctx context.Context, m Message) error {
	parent := ctx
	ctx, cancel := deadline(ctx, s.opts.timeout)
	defer cancel()
	title, body := Text(m)
	done := make(chan error, 1)
	go func() {
		svc, err := s.service()
		if err != nil {
			done <- err
			return
		}
		params := types.Params{}
		if slices.Contains(titled, s.scheme) {
			params["title"] = title
		}
		done <- svc.Send(body, &params)
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s: %s", s.display, s.scrub(err.Error()))
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", s.display, stopped(parent, ctx, s.opts.timeout))
	}
}

// scrub removes from an error text every part of the channel URL that may
// be a secret. shoutrrr's errors quote URLs and parameter values (a Slack
// webhook URL is its token; an HTTP error quotes the URL it posted to).
func (s *shoutrrrSender) scrub(msg string) string {
	u, err := url.Parse(s.raw)
	if err != nil {
		return "(error text withheld: the URL does not parse)"
	}
	var secrets []string
	add := func(v string, min int) {
		// Services re-join token parts with other separators (Slack's
		// "A-B-C" becomes ".../A/B/C"): each long part is a secret too.
		if parts := strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune("-/,:;@", r) }); len(parts) > 1 {
			for _, p := range parts {
				if len(p) >= 6 {
					secrets = append(secrets, p)
				}
			}
		}
		if len(v) >= min {
			secrets = append(secrets, v)
			if esc := url.QueryEscape(v); esc != v {
				secrets = append(secrets, esc)
			}
			if esc := url.PathEscape(v); esc != v {
				secrets = append(secrets, esc)
			}
		}
	}
	add(s.raw, 1)
	if u.User != nil {
		add(u.User.Username(), 6)
		p, _ := u.User.Password()
		add(p, 1)
	}
	// A host without a dot may be a token (slack://T000/B000/XXX).
	if h := u.Hostname(); !strings.Contains(h, ".") && !strings.Contains(h, ":") {
		add(h, 9)
	}
	for _, seg := range strings.Split(u.Path, "/") {
		add(seg, 4)
	}
	for _, vals := range u.Query() {
		for _, v := range vals {
			add(v, 4)
		}
	}
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, sec := range secrets {
		msg = strings.ReplaceAll(msg, sec, "xxxxx")
	}
	// Some services quote the receiver's answer verbatim: bound it and
	// escape it like a webhook's.
	if len(msg) > 2*maxErrorBody {
		msg = msg[:2*maxErrorBody] + "…"
	}
	return output.Escape(msg)
}
