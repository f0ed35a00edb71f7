package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// received is one request a loopback receiver got.
type received struct {
	header http.Header
	body   []byte
	path   string
	method string
	user   string
	pass   string
}

// receiver is a real HTTP server on loopback that records what it gets
// and answers with handle (200 when nil).
type receiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []received
}

func newReceiver(t *testing.T, handle func(w http.ResponseWriter, r *http.Request) bool) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		user, pass, _ := r.BasicAuth()
		rc.mu.Lock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body, path: r.URL.RequestURI(), method: r.Method, user: user, pass: pass})
		rc.mu.Unlock()
		if handle != nil && handle(w, r) {
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func downMessage() Message {
	return Message{Channel: "ops", Source: "monitor1", Events: []Event{{
		ID: 42, Kind: KindDown, ServerID: 7, ServerName: "web1", Host: "10.0.0.5",
		From: "ONLINE", To: "OFFLINE", At: at, Reason: "no heartbeat for 60s",
	}}}
}

func TestWebhookDeliversSignedPayload(t *testing.T) {
	rc := newReceiver(t, nil)
	const secret = "s3cret-channel-key"
	s, err := New("webhook+"+rc.URL+"/hooks/ops", secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), downMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/hooks/ops" {
		t.Errorf("got %s %s, want POST /hooks/ops", r.method, r.path)
	}
	if !VerifySignature(r.body, r.header.Get(SignatureHeader), secret) {
		t.Errorf("signature %q does not verify", r.header.Get(SignatureHeader))
	}
	if VerifySignature(r.body, r.header.Get(SignatureHeader), "another secret") {
		t.Error("signature verifies with the wrong secret")
	}
	tampered := []byte(strings.Replace(string(r.body), "web1", "web2", 1))
	if VerifySignature(tampered, r.header.Get(SignatureHeader), secret) {
		t.Error("signature verifies a changed body")
	}
	if got := r.header.Get(IdempotencyKeyHeader); got != "flip-42" {
		t.Errorf("idempotency header = %q, want flip-42", got)
	}
	if ua := r.header.Get("User-Agent"); !strings.HasPrefix(ua, "heartbeat") {
		t.Errorf("User-Agent = %q", ua)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var p Payload
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("decode payload: %v\n%s", err, r.body)
	}
	if p.Version != 1 || p.ID != 42 || p.IdempotencyKey != "flip-42" || p.Grouped || p.Test || p.Channel != "ops" || p.Source != "monitor1" {
		t.Errorf("payload header fields wrong: %+v", p)
	}
	if p.Title != "web1 is OFFLINE" || !strings.HasPrefix(p.Text, "web1 is OFFLINE: no heartbeat for 60s") || p.Counts["OFFLINE"] != 1 {
		t.Errorf("payload text wrong: %q %q %v", p.Title, p.Text, p.Counts)
	}
	if len(p.Events) != 1 {
		t.Fatalf("payload has %d events", len(p.Events))
	}
	e := p.Events[0]
	if e.ID != 42 || e.IdempotencyKey != "flip-42" || e.Kind != KindDown || e.ServerID != 7 || e.ServerName != "web1" ||
		e.Host != "10.0.0.5" || e.From != "ONLINE" || e.To != "OFFLINE" || !e.At.Equal(at) || e.Reason != "no heartbeat for 60s" {
		t.Errorf("payload event wrong: %+v", e)
	}
	if time.Since(p.SentAt) > time.Minute || p.SentAt.Location() != time.UTC {
		t.Errorf("sent_at = %v", p.SentAt)
	}
}

func TestWebhookBasicAuthAndNoSecret(t *testing.T) {
	rc := newReceiver(t, nil)
	u := strings.Replace(rc.URL, "http://", "webhook+http://alice:pa55@", 1)
	s, err := New(u+"/in", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), downMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := rc.requests()[0]
	if r.user != "alice" || r.pass != "pa55" {
		t.Errorf("basic auth = %q:%q", r.user, r.pass)
	}
	if h := r.header.Get(SignatureHeader); h != "" {
		t.Errorf("no secret, yet signature header %q", h)
	}
}

func TestWebhookRefusalIsAnError(t *testing.T) {
	long := "invalid signature\x1b[2J" + strings.Repeat("x", 5000)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, long)
		return true
	})
	s, err := New("webhook+"+rc.URL+"/hooks/T0SECRETTOKEN", "k")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), downMessage())
	if err == nil {
		t.Fatal("Send succeeded against a 401")
	}
	msg := err.Error()
	if !strings.Contains(msg, "HTTP 401") || !strings.Contains(msg, `invalid signature\x1b[2J`) {
		t.Errorf("error %q lacks the status or the escaped body", msg)
	}
	if len(msg) > 400 || strings.Contains(msg, "\x1b") {
		t.Errorf("error is not bounded and escaped (%d bytes): %q", len(msg), msg)
	}
	if strings.Contains(msg, "T0SECRETTOKEN") {
		t.Errorf("error %q shows the URL's path token", msg)
	}
}

func TestWebhookHonoursContext(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		return false
	})
	defer close(release)
	s, err := New("webhook+"+rc.URL+"/slow", "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Send(ctx, downMessage())
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send returned after %v, ctx allowed 300ms", d)
	}

	// WithTimeout caps an attempt even when ctx has no deadline.
	s, _ = New("webhook+"+rc.URL+"/slow", "k", WithTimeout(300*time.Millisecond))
	start = time.Now()
	if err := s.Send(context.Background(), downMessage()); err == nil {
		t.Fatal("Send succeeded past its time limit")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send returned after %v, limit 300ms", d)
	}
}

func TestWebhookRedirects(t *testing.T) {
	other := newReceiver(t, nil)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/stolen", http.StatusTemporaryRedirect)
		case "/moved":
			http.Redirect(w, r, "/final", http.StatusPermanentRedirect)
		case "/see-other":
			http.Redirect(w, r, "/final", http.StatusFound)
		default:
			return false
		}
		return true
	})
	send := func(path string) error {
		s, err := New("webhook+"+rc.URL+path, "k")
		if err != nil {
			t.Fatal(err)
		}
		return s.Send(context.Background(), downMessage())
	}
	if err := send("/away"); err == nil || !strings.Contains(err.Error(), "HTTP 307") {
		t.Errorf("redirect to another host: Send = %v, want an HTTP 307 error", err)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the other host got %d requests", n)
	}
	if err := send("/see-other"); err == nil || !strings.Contains(err.Error(), "HTTP 302") {
		t.Errorf("302 (would turn the POST into a GET): Send = %v, want an error", err)
	}
	if err := send("/moved"); err != nil {
		t.Errorf("308 to the same host: Send = %v", err)
	}
	reqs := rc.requests()
	last := reqs[len(reqs)-1]
	if last.path != "/final" || last.method != http.MethodPost || !VerifySignature(last.body, last.header.Get(SignatureHeader), "k") {
		t.Errorf("the 308 was not followed with the signed POST: %s %s", last.method, last.path)
	}
}

func TestVerifySignatureRejectsMalformed(t *testing.T) {
	body := []byte(`{"version":1}`)
	good := Sign(body, "k")
	for _, h := range []string{"", "sha256=", "sha1=" + good[len("sha256="):], "sha256=zz", good + "00", strings.ToUpper(good)} {
		if VerifySignature(body, h, "k") {
			t.Errorf("VerifySignature accepted %q", h)
		}
	}
	if !VerifySignature(body, good, "k") || VerifySignature(body, good, "") {
		t.Error("VerifySignature: good signature or empty secret handled wrong")
	}
}

func TestWebhookTestMessage(t *testing.T) {
	rc := newReceiver(t, nil)
	s, err := New("webhook+"+rc.URL+"/in", "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), TestMessage("ops", "monitor1", time.Now())); err != nil {
		t.Fatal(err)
	}
	var p Payload
	if err := json.Unmarshal(rc.requests()[0].body, &p); err != nil {
		t.Fatal(err)
	}
	if !p.Test || len(p.Events) != 1 || p.Events[0].Kind != KindTest || !strings.HasPrefix(p.IdempotencyKey, "test-") ||
		p.Title != "TEST message from heartbeat on monitor1 — channel ops works" {
		t.Errorf("test payload = %+v", p)
	}
}
