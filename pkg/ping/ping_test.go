package ping

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// receiver is a real HTTP server on loopback that records what it got.
type receiver struct {
	mu   sync.Mutex
	got  []string
	code int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.got = append(r.got, req.Method+" "+req.URL.RequestURI()+" "+string(body))
	code := r.code
	r.mu.Unlock()
	if code == 0 {
		code = 200
	}
	w.WriteHeader(code)
}

func start(t *testing.T) (*receiver, string) {
	r := &receiver{}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func TestStyles(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		path string
		want []string
	}{
		// Self-hosted Healthchecks: /start, the message as body, /fail.
		{"/ping/5b6e2d0a-1c2b-4b4e-9f0e-1a2b3c4d5e6f", []string{
			"GET /ping/5b6e2d0a-1c2b-4b4e-9f0e-1a2b3c4d5e6f/start ",
			"POST /ping/5b6e2d0a-1c2b-4b4e-9f0e-1a2b3c4d5e6f 120/120 answered",
			"POST /ping/5b6e2d0a-1c2b-4b4e-9f0e-1a2b3c4d5e6f/fail store down"}},
		// Uptime Kuma push monitor: status and msg in the query, no start.
		{"/api/push/Ab12Cd34?status=up&msg=OK&ping=", []string{
			"GET /api/push/Ab12Cd34?msg=120%2F120+answered&ping=&status=up ",
			"GET /api/push/Ab12Cd34?msg=store+down&ping=&status=down "}},
		// Anything else: the success ping only.
		{"/hooks/alive", []string{"GET /hooks/alive "}},
	} {
		r, base := start(t)
		p, err := New(base + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range []error{p.Start(ctx), p.Success(ctx, "120/120 answered"), p.Fail(ctx, "store down")} {
			if err != nil {
				t.Errorf("%s: %v", tt.path, err)
			}
		}
		if strings.Join(r.got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("%s: receiver got\n%s\nwant\n%s", tt.path, strings.Join(r.got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}

func TestFailureNamesHostOnly(t *testing.T) {
	r, base := start(t)
	r.code = 404
	p, err := New(base + "/ping/secret-uuid")
	if err != nil {
		t.Fatal(err)
	}
	err = p.Success(context.Background(), "ok")
	if err == nil || !strings.Contains(err.Error(), "HTTP 404") || strings.Contains(err.Error(), "secret-uuid") {
		t.Errorf("error = %v; want HTTP 404 without the check's token", err)
	}
	if _, err := New("ftp://example.com/x"); err == nil {
		t.Error("an ftp URL was accepted")
	}
}
