package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TestSlackStyleWebhook sends through Mattermost's incoming webhook, which
// takes Slack's payload ({"text": …}): shoutrrr's slack:// always posts to
// hooks.slack.com, so a Slack-compatible receiver on loopback is reached
// this way.
func TestSlackStyleWebhook(t *testing.T) {
	rc := newReceiver(t, nil)
	host := strings.TrimPrefix(rc.URL, "http://")
	s, err := New("mattermost://"+host+"/hooktoken1234?disabletls=yes", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), downMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	if reqs[0].path != "/hooks/hooktoken1234" {
		t.Errorf("path = %q", reqs[0].path)
	}
	var slack struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(reqs[0].body, &slack); err != nil {
		t.Fatalf("not a Slack-style payload: %v: %s", err, reqs[0].body)
	}
	if !strings.HasPrefix(slack.Text, "web1 is OFFLINE: no heartbeat for 60s") {
		t.Errorf("text = %q", slack.Text)
	}
}

// TestGenericWebhook: generic+http:// posts JSON with title and message.
func TestGenericWebhook(t *testing.T) {
	rc := newReceiver(t, nil)
	s, err := New("generic+"+rc.URL+"/notify?template=json", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), downMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	var got map[string]string
	if err := json.Unmarshal(rc.requests()[0].body, &got); err != nil {
		t.Fatalf("%v: %s", err, rc.requests()[0].body)
	}
	if got["title"] != "web1 is OFFLINE" || !strings.HasPrefix(got["message"], "web1 is OFFLINE: no heartbeat") {
		t.Errorf("generic payload = %v", got)
	}
}

// TestNtfy: ntfy://host:port/topic?scheme=http reaches an ntfy-style
// receiver on loopback.
func TestNtfy(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"abc","event":"message"}`)
		return true
	})
	host := strings.TrimPrefix(rc.URL, "http://")
	s, err := New("ntfy://"+host+"/heartbeat-alerts?scheme=http", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), downMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/heartbeat-alerts" {
		t.Errorf("got %s %s, want POST /heartbeat-alerts", r.method, r.path)
	}
	if got := r.header.Get("Title"); got != "web1 is OFFLINE" {
		t.Errorf("Title header = %q", got)
	}
	if !strings.Contains(string(r.body), "web1 is OFFLINE: no heartbeat for 60s") {
		t.Errorf("body = %s", r.body)
	}
}

// smtpSink is a real SMTP server (emersion/go-smtp) on loopback that keeps
// the messages it accepts.
type smtpSink struct {
	mu   sync.Mutex
	mail []struct{ from, to, data, user string }
}

type smtpSession struct {
	sink           *smtpSink
	from, to, user string
}

func (s *smtpSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{sink: s}, nil }
func (s *smtpSession) AuthMechanisms() []string                 { return []string{sasl.Plain} }
func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != "alerts" || pass != "mailpass" {
			return errors.New("bad credentials")
		}
		s.user = user
		return nil
	}), nil
}
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error   { s.to = to; return nil }
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.sink.mu.Lock()
	s.sink.mail = append(s.sink.mail, struct{ from, to, data, user string }{s.from, s.to, string(b), s.user})
	s.sink.mu.Unlock()
	return nil
}
func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

func TestSMTPDeliversMail(t *testing.T) {
	sink := &smtpSink{}
	srv := smtp.NewServer(sink)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 5*time.Second, 5*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	port := ln.Addr().(*net.TCPAddr).Port
	raw := "smtp://alerts:mailpass@127.0.0.1:" + strconv.Itoa(port) + "/?from=heartbeat@example.com&to=ops@example.com&encryption=None&usestarttls=No&auth=Plain"
	s, err := New(raw, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), downMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.mail) != 1 {
		t.Fatalf("server got %d messages", len(sink.mail))
	}
	m := sink.mail[0]
	if m.user != "alerts" || m.from != "heartbeat@example.com" || m.to != "ops@example.com" {
		t.Errorf("envelope: user %q from %q to %q", m.user, m.from, m.to)
	}
	if !strings.Contains(m.data, "Subject: web1 is OFFLINE\r\n") {
		t.Errorf("no subject in:\n%s", m.data)
	}
	if !strings.Contains(m.data, "web1 is OFFLINE: no heartbeat for 60s") {
		t.Errorf("no body in:\n%s", m.data)
	}
}

// TestShoutrrrHonoursContext: shoutrrr takes no context; Send still
// returns when ctx is done although the receiver never answers.
func TestShoutrrrHonoursContext(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		return false
	})
	defer close(release)
	s, err := New("generic+"+rc.URL+"/slow", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Send(ctx, downMessage()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send returned after %v, ctx allowed 300ms", d)
	}
}

// TestShoutrrrErrorsHideSecrets: a refused delivery's error names the
// channel without its token.
func TestShoutrrrErrorsHideSecrets(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusForbidden)
		return true
	})
	host := strings.TrimPrefix(rc.URL, "http://")
	s, err := New("mattermost://"+host+"/SuperSecretHookToken?disabletls=yes", "")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), downMessage())
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("Send = %v, want a 403 error", err)
	}
	if strings.Contains(err.Error(), "SuperSecretHookToken") {
		t.Errorf("error %q shows the token", err)
	}
	// Connection refused: net/http's error quotes the URL it posted to.
	rc.Close()
	s, _ = New("generic+http://"+host+"/api/SuperSecretHookToken?token=tok12345", "")
	err = s.Send(context.Background(), downMessage())
	if err == nil {
		t.Fatal("Send to a closed server succeeded")
	}
	if strings.Contains(err.Error(), "SuperSecretHookToken") || strings.Contains(err.Error(), "tok12345") {
		t.Errorf("error %q shows a secret", err)
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, raw := range []string{
		"",
		" slack://x",
		"no-scheme-at-all",
		"irc://irc.example.com/chan",
		"1http://x",
		"webhook+https:///no-host",
		"webhook+ftp://example.com/x",
		"slack://short@channel",
		"ntfy://ntfy.sh/",
		"smtp://user:hunter2secret@%zz/",
		"telegram://",
	} {
		_, err := New(raw, "")
		if !errors.Is(err, ErrBadURL) {
			t.Errorf("New(%q) = %v, want ErrBadURL", raw, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter2secret") || strings.Contains(err.Error(), "\n") {
			t.Errorf("New(%q) error %q shows a secret or spans lines", raw, err)
		}
	}
}

func TestNewAcceptsServiceURLs(t *testing.T) {
	for _, raw := range []string{
		"slack://hook:T00000000-B00000000-XXXXXXXXXXXXXXXXXXXXXXXX@webhook",
		"slack://T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
		"slack://xoxb:123456789012-1234567890123-4kX7XXXXXXXXXXXXXXXXXXXX@C01234567",
		"discord://token123@123456789",
		"teams://11111111-4444-4444-8444-cccccccccccc@22222222-4444-4444-8444-cccccccccccc/33333333012222222222333333333344/44444444-4444-4444-8444-cccccccccccc/V2ESyij_gAljSoUQHvZoZYzlpAoAXExyOl26dlf1xHEx05?host=contoso.webhook.office.com",
		"telegram://110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw@telegram?chats=@heartbeat",
		"ntfy://ntfy.sh/heartbeat",
		"gotify://gotify.example.com/Aaa.bbb.ccc",
		"pushover://shoutrrr:apitoken@userkey/",
		"matrix://user:password@matrix.example.com/?rooms=!room:example.com",
		"smtp://user:pass@mail.example.com:587/?from=a@example.com&to=b@example.com",
		"generic+https://example.com/api/hook",
		"webhook+https://example.com/hook",
		"exec:/usr/local/bin/page-me",
	} {
		if _, err := New(raw, "k"); err != nil {
			t.Errorf("New(%s): %v", Redact(raw), err)
		}
	}
	if k, _ := ChannelKind("generic+https://example.com/x"); k != "generic" {
		t.Errorf("ChannelKind(generic+https) = %q", k)
	}
}

// TestShoutrrrConcurrentSends: one Sender used by several goroutines at
// once (a drain may) delivers every message, with no data race (-race).
func TestShoutrrrConcurrentSends(t *testing.T) {
	rc := newReceiver(t, nil)
	s, err := New("generic+"+rc.URL+"/notify?template=json", "")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := downMessage()
			m.Events[0].ServerName = "web" + strconv.Itoa(i)
			errs <- s.Send(context.Background(), m)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	seen := map[string]bool{}
	for _, r := range rc.requests() {
		var got map[string]string
		json.Unmarshal(r.body, &got)
		seen[got["title"]] = true
	}
	if len(seen) != 8 {
		t.Errorf("receiver saw %d distinct titles, want 8: %v", len(seen), seen)
	}
}

// TestScrub: an error text from shoutrrr loses every part of the channel
// URL that may be a secret, in plain and percent-encoded form, and a
// receiver's answer quoted in it cannot put control characters on the
// operator's terminal or fill it.
func TestScrub(t *testing.T) {
	raw := "slack://hook:T0SECRET1-B0SECRET2-SECRETSECRETSECRETSECRET3@webhook?botname=alice%20bot"
	s, err := New(raw, "")
	if err != nil {
		t.Fatal(err)
	}
	msg := s.(*shoutrrrSender).scrub(`Post "https://hooks.slack.com/services/T0SECRET1/B0SECRET2/SECRETSECRETSECRETSECRET3": invalid_token` +
		" alice%20bot alice bot \x1b[2J" + strings.Repeat("y", 3000))
	for _, secret := range []string{"T0SECRET1", "B0SECRET2", "SECRETSECRETSECRETSECRET3", "alice%20bot", "alice bot"} {
		if strings.Contains(msg, secret) {
			t.Errorf("scrubbed error shows %q: %s", secret, msg)
		}
	}
	if strings.Contains(msg, "\x1b") || !strings.Contains(msg, `\x1b[2J`) {
		t.Errorf("control character not escaped: %q", msg)
	}
	if len(msg) > 3*maxErrorBody || !strings.Contains(msg, "invalid_token") {
		t.Errorf("scrubbed error not bounded or lost its cause (%d bytes): %q", len(msg), msg)
	}
}
