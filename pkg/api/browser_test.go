package api_test

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/store"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "also write the status page screenshot to docs/status-page.png")

// chromium finds the browser, skipping the test without one, except under
// CI=true, where a missing prerequisite must fail.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install -y chromium); CI=true requires it")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium)")
	return ""
}

type renderedRow struct {
	Server     string `json:"server"`
	Status     string `json:"status"`
	BadgeColor string `json:"badgeColor"`
	BadgeBg    string `json:"badgeBg"`
	Stripe     string `json:"stripe"`
	Age        string `json:"age"`
}

func TestBrowserStatusPage(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	s := openSQLite(t)
	ctx := context.Background()
	srv := serve(t, s, api.Options{})
	push := func(ag agent, version string) {
		if a := call(t, "POST", srv.URL+"/api/heartbeat/"+strconv.FormatInt(ag.id, 10)+"/", `{"agent_version":"`+version+`"}`, jsonType, bearer(ag.token)); a.code != 200 {
			t.Fatalf("push: %d %s", a.code, a.body)
		}
	}
	cpanel := addAgent(t, s, "cpanel-test")
	push(cpanel, "1.0.0")
	for range 3 {
		s.RaiseAlert(ctx, store.AlertSpec{ServerID: cpanel.id, Kind: store.KindAlert, Severity: store.SeverityWarning, Message: "disk /var at 91%"})
	}
	s.RaiseAlert(ctx, store.AlertSpec{ServerID: cpanel.id, Kind: store.KindAnomaly, Severity: store.SeverityCritical, Message: "load average 48 on 4 cores"})
	push(addAgent(t, s, "web-01"), "1.0.0")
	push(addAgent(t, s, "web-02"), "1.0.1")
	evil := addAgent(t, s, `<script>alert(1)</script>`)
	push(evil, "1.0.0")
	addAgent(t, s, "Kimai")
	metrics := addAgent(t, s, "Metrics-Kb-Server")
	// Its last heartbeat was two hours ago: the evaluation below records
	// it OFFLINE since then, so its uptime bar shows a day with downtime.
	s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: metrics.id, OK: true, At: time.Now().Add(-2 * time.Hour)}})
	s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: metrics.id, ErrorClass: "refused", Error: "dial tcp 10.0.0.5:22: connection refused"}})
	// A long name with a failure: on a phone its name, state, age and the
	// failure's reason must all be readable.
	long := addAgent(t, s, longName)
	s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: long.id, ErrorClass: "timeout", Error: longError}})
	old := addAgent(t, s, "legacy-ftp")
	s.SetServerEnabled(ctx, old.id, false)
	if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(browser),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(chromiumProfile(t)),
		chromedp.WindowSize(1280, 860),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	tctx, cancel := context.WithTimeout(bctx, 45*time.Second)
	defer cancel()

	var (
		rows       []renderedRow
		scripts    int
		offline    string
		title      string
		evilText   string
		bars       []renderedBar
		changes    int
		desktopPNG []byte
	)
	err := chromedp.Run(tctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible("#servers", chromedp.ByID),
		chromedp.Title(&title),
		chromedp.Evaluate(`[...document.querySelectorAll("#servers tbody tr")].map(tr => {
			const badge = tr.querySelector(".badge");
			return {server: tr.dataset.server, status: tr.dataset.status,
				badgeColor: getComputedStyle(badge).color, badgeBg: getComputedStyle(badge).backgroundColor,
				stripe: getComputedStyle(tr).boxShadow, age: tr.cells[2].textContent.trim()};
		})`, &rows),
		chromedp.Evaluate(`document.scripts.length`, &scripts),
		chromedp.Evaluate(`document.getElementById("count-offline").textContent`, &offline),
		chromedp.Evaluate(`document.querySelector('tr[data-status="ONLINE"] .name') && [...document.querySelectorAll(".name")].map(e => e.textContent).find(n => n.includes("script")) || ""`, &evilText),
		chromedp.Evaluate(barsJS, &bars),
		chromedp.Evaluate(`document.querySelectorAll("#changes tbody tr").length`, &changes),
		chromedp.FullScreenshot(&desktopPNG, 100),
	)
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	checkBars(t, bars, changes)
	// Status colours, as the browser computed them from the stylesheet.
	colours := map[string]string{
		"OFFLINE": "rgb(196, 36, 47)", "WARNING": "rgb(154, 103, 0)",
		"ONLINE": "rgb(26, 127, 55)", "DISABLED": "rgb(106, 115, 125)",
	}
	wantOrder := []struct{ server, status string }{
		{"Kimai", "OFFLINE"}, {"Metrics-Kb-Server", "OFFLINE"}, {longName, "OFFLINE"}, {"cpanel-test", "WARNING"},
		{"<script>alert(1)</script>", "ONLINE"}, {"web-01", "ONLINE"}, {"web-02", "ONLINE"}, {"legacy-ftp", "DISABLED"},
	}
	if len(rows) != len(wantOrder) {
		t.Fatalf("page shows %d rows, want %d: %+v", len(rows), len(wantOrder), rows)
	}
	for i, w := range wantOrder {
		r := rows[i]
		if r.Server != w.server || r.Status != w.status {
			t.Errorf("row %d = %s %s, want %s %s (worst first)", i, r.Server, r.Status, w.server, w.status)
		}
		if r.BadgeColor != colours[r.Status] {
			t.Errorf("%s badge colour = %s, want %s for %s", r.Server, r.BadgeColor, colours[r.Status], r.Status)
		}
		if r.BadgeBg == "rgba(0, 0, 0, 0)" || r.Stripe == "none" {
			t.Errorf("%s: badge background %s, row stripe %s: status not coloured", r.Server, r.BadgeBg, r.Stripe)
		}
		if (r.Status == "ONLINE" || r.Status == "WARNING") && r.Age == "never" {
			t.Errorf("%s: pushed but age %q", r.Server, r.Age)
		}
	}
	if rows[0].Age != "never" {
		t.Errorf("Kimai never sent a heartbeat, page says %q", rows[0].Age)
	}
	if scripts != 0 || evilText != "<script>alert(1)</script>" {
		t.Errorf("scripts on page = %d, evil name rendered as %q: user data must be text", scripts, evilText)
	}
	if offline != "3" || title != "3 offline · heartbeat" {
		t.Errorf("offline count %q, title %q", offline, title)
	}

	// On a phone (390 CSS px): no sideways scrolling of the page or of the
	// server panel, and every server's name, state, age and failure reason
	// inside the viewport, names not broken mid-word.
	var (
		phone    phoneLayout
		phonePNG []byte
	)
	err = chromedp.Run(tctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Reload(),
		chromedp.WaitVisible("#servers", chromedp.ByID),
		chromedp.Evaluate(phoneLayoutJS, &phone),
		chromedp.FullScreenshot(&phonePNG, 100),
	)
	if err != nil {
		t.Fatalf("chromium (phone): %v", err)
	}
	checkPhoneLayout(t, phone, map[string]string{longName: longError, "Metrics-Kb-Server": "dial tcp 10.0.0.5:22: connection refused"})
	var phoneBars []renderedBar
	if err := chromedp.Run(tctx, chromedp.Evaluate(barsJS, &phoneBars)); err != nil {
		t.Fatal(err)
	}
	checkBars(t, phoneBars, changes)
	dir := t.TempDir()
	for name, png := range map[string][]byte{"status-page.png": desktopPNG, "status-page-phone.png": phonePNG} {
		if len(png) < 1000 {
			t.Fatalf("screenshot %s is %d bytes", name, len(png))
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	if *updateScreenshot {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "status-page.png"), desktopPNG, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// renderedBar is a server's 90-day uptime bar as the browser drew it.
type renderedBar struct {
	Server  string   `json:"server"`
	Bands   []string `json:"bands"`
	Width   float64  `json:"width"`
	Inside  bool     `json:"inside"`
	Uptime  string   `json:"u24"`
	Covered float64  `json:"covered"`
}

// barsJS measures every row's bar: its rects' bands, how many of the 90
// day-units they cover, its drawn width, and whether it lies inside the
// viewport.
const barsJS = `[...document.querySelectorAll("#servers tbody tr")].map(tr => {
	const bar = tr.querySelector("svg.bar");
	const box = bar ? bar.getBoundingClientRect() : {width: 0, left: -1, right: 0};
	const rects = bar ? [...bar.querySelectorAll("rect")] : [];
	return {server: tr.dataset.server, bands: rects.map(r => r.getAttribute("class")),
		covered: rects.reduce((n, r) => n + Number(r.getAttribute("width")), 0),
		width: box.width, inside: box.left >= 0 && box.right <= document.documentElement.clientWidth + 0.5,
		u24: (tr.querySelector(".u24") || {}).textContent || ""};
})`

// checkBars asserts the uptime bars: every row has one, drawn and on
// screen, covering 90 days; the server down for two hours shows a day with
// downtime and 0% for the last 24 hours (it was never up since it was first
// judged); one that was up since shows only up days; the recent changes
// are listed.
func checkBars(t *testing.T, bars []renderedBar, changes int) {
	t.Helper()
	if len(bars) == 0 {
		t.Fatal("no uptime bars measured")
	}
	for _, b := range bars {
		if b.Width < 60 || !b.Inside || b.Covered != 90 {
			t.Errorf("%s: uptime bar %.0fpx wide, inside viewport %v, covering %v days; want a visible 90-day bar", b.Server, b.Width, b.Inside, b.Covered)
		}
		last := b.Bands[len(b.Bands)-1]
		switch b.Server {
		case "Metrics-Kb-Server":
			if last != "down" || b.Uptime != "0.00%" {
				t.Errorf("%s: today's band %q, 24h uptime %q; want down and 0.00%%", b.Server, last, b.Uptime)
			}
		case "web-01":
			if last != "up" || b.Uptime != "100%" {
				t.Errorf("%s: today's band %q, 24h uptime %q; want up and 100%%", b.Server, last, b.Uptime)
			}
		}
	}
	if changes < len(bars) {
		t.Errorf("recent changes lists %d rows, want at least one per server (%d)", changes, len(bars))
	}
}

const (
	// longName fits a phone's width on one line, but only unbroken: the old
	// page broke it mid-word ("web-frontend-eu-w|est-1a-0042").
	longName  = "web-frontend-eu-west-1a-0042"
	longError = "dial tcp 203.0.113.42:22: i/o timeout after 10s (no SYN-ACK)"
)

// phoneLayout is what the browser measured on the phone viewport.
type phoneLayout struct {
	Viewport         float64 `json:"viewport"`
	ScrollWidth      float64 `json:"scrollWidth"`
	PanelScrollWidth float64 `json:"panelScrollWidth"`
	PanelWidth       float64 `json:"panelWidth"`
	Rows             []struct {
		Server     string  `json:"server"`
		NameLines  int     `json:"nameLines"`
		NameHeight float64 `json:"nameHeight"`
		LineHeight float64 `json:"lineHeight"`
		Visible    struct {
			Name, State, Age, Error bool
		} `json:"visible"`
		Text string `json:"text"`
	} `json:"rows"`
}

// phoneLayoutJS measures the page: an element counts as visible when it has
// a box of non-zero size that lies inside the viewport horizontally and is
// not clipped by a scrolling panel. Text is innerText, which leaves out
// what CSS hides (a tooltip's title attribute is not readable on a phone).
const phoneLayoutJS = `(() => {
	const vw = document.documentElement.clientWidth;
	const panel = document.getElementById("servers").closest(".panel");
	const pr = panel.getBoundingClientRect();
	const visible = e => {
		if (!e) return false;
		const r = e.getBoundingClientRect();
		return r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= vw + 0.5 &&
			r.left >= pr.left - 0.5 && r.right <= pr.right + 0.5 && getComputedStyle(e).visibility !== "hidden";
	};
	const rows = [...document.querySelectorAll("#servers tbody tr")].map(tr => {
		const name = tr.querySelector(".name");
		return {
			server: tr.dataset.server,
			nameLines: name.getClientRects().length,
			nameHeight: name.getBoundingClientRect().height,
			lineHeight: parseFloat(getComputedStyle(name).lineHeight),
			visible: {Name: visible(name), State: visible(tr.querySelector(".badge")),
				Age: visible(tr.cells[2]), Error: visible(tr.querySelector(".err"))},
			text: tr.innerText,
		};
	});
	return {viewport: vw, scrollWidth: document.documentElement.scrollWidth,
		panelScrollWidth: panel.scrollWidth, panelWidth: panel.clientWidth, rows};
})()`

// checkPhoneLayout asserts the phone measurements; failures maps a server
// to the reason of its failure, which must be readable as text.
func checkPhoneLayout(t *testing.T, p phoneLayout, failures map[string]string) {
	t.Helper()
	if p.Viewport != 390 {
		t.Fatalf("phone viewport is %v px wide, want 390", p.Viewport)
	}
	if p.ScrollWidth > p.Viewport {
		t.Errorf("on a 390px-wide phone the page scrolls sideways (scrollWidth %v)", p.ScrollWidth)
	}
	if p.PanelScrollWidth > p.PanelWidth+1 {
		t.Errorf("on a phone the server panel scrolls sideways (%v px of content in %v px)", p.PanelScrollWidth, p.PanelWidth)
	}
	seen := map[string]bool{}
	for _, r := range p.Rows {
		seen[r.Server] = true
		if !r.Visible.Name || !r.Visible.State || !r.Visible.Age {
			t.Errorf("%s on a phone: name, state, age visible = %v, %v, %v", r.Server, r.Visible.Name, r.Visible.State, r.Visible.Age)
		}
		if r.Server == longName && (r.NameLines != 1 || r.NameHeight > 1.5*r.LineHeight) {
			t.Errorf("%s on a phone: name in %d boxes, %.0f px high for a %.0f px line: broken mid-word",
				r.Server, r.NameLines, r.NameHeight, r.LineHeight)
		}
		if reason, failed := failures[r.Server]; failed {
			if !r.Visible.Error || !strings.Contains(r.Text, reason) {
				t.Errorf("%s on a phone: error class visible = %v, reason %q readable = %v; row text:\n%s",
					r.Server, r.Visible.Error, reason, strings.Contains(r.Text, reason), r.Text)
			}
		}
	}
	for name := range failures {
		if !seen[name] {
			t.Errorf("%s is not on the phone page", name)
		}
	}
}

// chromiumProfile is a fresh --user-data-dir. It is not t.TempDir: after
// the browser exits, Chromium's helper processes (crashpad) may still write
// into it for a moment, and TempDir's cleanup fails the test on a
// directory that is not empty yet. Removal is retried for a few seconds.
func chromiumProfile(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "heartbeat-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			err := os.RemoveAll(dir)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Logf("leaving Chromium profile %s: %v", dir, err)
				return
			}
		}
	})
	return dir
}
