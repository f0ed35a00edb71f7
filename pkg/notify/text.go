package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stacksense/heartbeat/pkg/output"
)

// GroupListLimit is how many servers a grouped message names before it
// says "and N more": a storm of 500 must still fit a chat message.
const GroupListLimit = 20

// maxReasonRunes bounds a reason in text, which comes from probe errors
// and people and could be long.
const maxReasonRunes = 300

// Text renders m as plain text for every channel kind: a one-line title
// (an e-mail subject, a push title) and a body that stands on its own
// (chat services show only the body). Server names, hosts and reasons are
// escaped (control characters, bidirectional overrides), since they are
// stored from untrusted input.
func Text(m Message) (title, body string) {
	if m.Test || (len(m.Events) == 1 && m.Events[0].Kind == KindTest) {
		line := fmt.Sprintf("TEST message from heartbeat on %s — channel %s works", orUnknown(m.Source), orUnknown(m.Channel))
		return line, line + "\nThis is a test; no server changed state."
	}
	switch len(m.Events) {
	case 0:
		return "heartbeat: no changes", "heartbeat: no changes"
	case 1:
		if !m.Grouped {
			return single(m.Events[0])
		}
	}
	return grouped(m.Events)
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return output.Escape(s)
}

// name is the server's escaped name, or "server <id>" when it has none.
func name(e Event) string {
	if e.ServerName == "" {
		return fmt.Sprintf("server %d", e.ServerID)
	}
	return output.Escape(e.ServerName)
}

func reason(e Event) string {
	r := output.Escape(e.Reason)
	if n := []rune(r); len(n) > maxReasonRunes {
		r = string(n[:maxReasonRunes]) + "…"
	}
	return r
}

// single renders one event: the title is the headline, the body repeats
// it with the reason and the details a reader needs to act.
func single(e Event) (title, body string) {
	n, to, from := name(e), output.Escape(e.To), output.Escape(e.From)
	var head string
	switch e.Kind {
	case KindUp:
		title = fmt.Sprintf("%s is back %s", n, to)
		switch {
		case e.DownFor > 0 && !e.At.IsZero():
			head = fmt.Sprintf("%s is back %s after %s (was %s since %s)", n, to, Duration(e.DownFor), from, stamp(e.At.Add(-e.DownFor)))
		case e.DownFor > 0:
			head = fmt.Sprintf("%s is back %s after %s (was %s)", n, to, Duration(e.DownFor), from)
		default:
			head = fmt.Sprintf("%s is back %s (was %s)", n, to, from)
		}
	case KindReminder:
		title = fmt.Sprintf("%s is still %s", n, to)
		if e.DownFor > 0 {
			head = fmt.Sprintf("%s is still %s (down for %s)", n, to, Duration(e.DownFor))
		} else {
			head = title
		}
	case KindCutOff:
		host := orUnknown(e.Host)
		title = fmt.Sprintf("monitoring host %s is cut off", host)
		head = fmt.Sprintf("monitoring host %s is cut off: its probes reached no server, so no server was marked OFFLINE from this run", host)
	case KindMaintenance:
		if e.To == "MAINTENANCE" {
			title = fmt.Sprintf("%s is in MAINTENANCE", n)
		} else {
			title = fmt.Sprintf("%s left MAINTENANCE: now %s", n, to)
		}
		head = title
	default: // down, warning, and any kind added later
		title = fmt.Sprintf("%s is %s", n, to)
		head = title
	}
	body = head
	if r := reason(e); r != "" && e.Kind != KindUp {
		body += ": " + r
	} else if r != "" {
		body += "\nReason: " + r
	}
	var details []string
	if e.Host != "" && e.Kind != KindCutOff {
		details = append(details, "host "+output.Escape(e.Host))
	}
	if e.From != "" && e.Kind != KindUp && e.Kind != KindReminder {
		details = append(details, "was "+from)
	}
	if !e.At.IsZero() && e.Kind != KindReminder {
		details = append(details, "at "+stamp(e.At))
	}
	if len(details) > 0 {
		body += "\n" + strings.Join(details, "; ")
	}
	return title, body
}

// stateOrder is the order of the counts in a grouped title: the worst
// first.
var stateOrder = []string{"OFFLINE", "WARNING", "MAINTENANCE", "ONLINE", "DISABLED"}

// grouped renders a storm: a title with the counts by new state, and a
// body listing the first GroupListLimit servers.
func grouped(events []Event) (title, body string) {
	counts := map[string]int{}
	for _, e := range events {
		to := e.To
		if e.Kind == KindCutOff {
			to = "cut off"
		}
		counts[output.Escape(to)]++
	}
	var states []string
	for s := range counts {
		states = append(states, s)
	}
	slices.SortFunc(states, func(a, b string) int {
		ia, ib := rank(a), rank(b)
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(states))
	for i, s := range states {
		parts[i] = fmt.Sprintf("%d %s", counts[s], s)
	}
	noun := "servers"
	if len(events) == 1 {
		noun = "server"
	}
	title = fmt.Sprintf("%d %s changed state: %s", len(events), noun, strings.Join(parts, ", "))
	var b strings.Builder
	b.WriteString(title)
	for i, e := range events {
		if i == GroupListLimit {
			fmt.Fprintf(&b, "\nand %d more", len(events)-GroupListLimit)
			break
		}
		b.WriteString("\n- ")
		b.WriteString(line(e))
	}
	return title, b.String()
}

func rank(state string) int {
	if i := slices.Index(stateOrder, state); i >= 0 {
		return i
	}
	return len(stateOrder)
}

// line is one event in a grouped list.
func line(e Event) string {
	var s string
	switch e.Kind {
	case KindCutOff:
		s = fmt.Sprintf("monitoring host %s cut off", orUnknown(e.Host))
	case KindReminder:
		s = fmt.Sprintf("%s still %s", name(e), output.Escape(e.To))
	default:
		s = fmt.Sprintf("%s: %s → %s", name(e), output.Escape(e.From), output.Escape(e.To))
	}
	if e.Kind == KindUp && e.DownFor > 0 {
		s += " after " + Duration(e.DownFor)
	} else if e.Kind == KindReminder && e.DownFor > 0 {
		s += " for " + Duration(e.DownFor)
	}
	if r := reason(e); r != "" && e.Kind != KindUp {
		s += " (" + r + ")"
	}
	return s
}

// stamp formats a time for people: UTC, to the second.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// Duration formats d the short way people read in a chat: "45s", "12m",
// "2h", "2h5m", "3d4h" (rounded down to the two largest units).
func Duration(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d/time.Second))
	}
	if d < time.Hour {
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	if d < 24*time.Hour {
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, h)
}

// shortDigest is 16 hex digits of SHA-256: enough to tell groups apart.
func shortDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}
