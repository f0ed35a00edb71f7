package report

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/status"
)

// AppendJSON must write exactly what encoding/json writes for every
// field, including the escaping of odd names and errors, null pointers,
// float forms and the omitted location fields.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "web-1", `quo"te\back`, "<script>&amp;", "tab\tnl\ncr\rbs\bff\f\x00\x1f\x7f", "bad\xffutf8\xc3",
		"line\u2028para\u2029", "日本語 ✓ 😀", strings.Repeat("x", 300)}
	floats := []float64{0, 1, 0.5, 12.345, 1e-7, 3.2e-9, 1e21, 123456789.123, 100, 99.99999999, 1.5e300, -2.25}
	at := time.Date(2026, 12, 4, 5, 6, 7, 123456789, time.UTC)
	times := []*time.Time{nil, &at, ptr(at.Truncate(time.Second)), ptr(at.In(time.FixedZone("x", 3600)))}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(n int) int { return rng.IntN(n) }
	var rows []ServerStatus
	defer func() {
		// The same rows through JSONArrayWriter (AppendJSON, then its own
		// indenting) read exactly as json.MarshalIndent of the slice.
		var got bytes.Buffer
		a := output.NewJSONArrayWriter(&got)
		for i := range rows {
			if err := a.Add(&rows[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		want, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != string(want)+"\n" {
			t.Errorf("JSONArrayWriter differs from json.MarshalIndent (%d vs %d bytes)", got.Len(), len(want)+1)
		}
		// And encoded on every CPU, as `status --json` does.
		var par bytes.Buffer
		p := output.NewJSONArrayWriter(&par)
		if err := p.AddAll(len(rows), func(i int) output.JSONAppender { return &rows[i] }); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if par.String() != string(want)+"\n" {
			t.Errorf("JSONArrayWriter.AddAll differs from json.MarshalIndent (%d vs %d bytes)", par.Len(), len(want)+1)
		}
	}()
	for i := 0; i < 3000; i++ {
		s := ServerStatus{
			ID: rng.Int64(), Name: strs[pick(len(strs))], Status: status.State(strs[pick(len(strs))]),
			LastHeartbeat: times[pick(len(times))], ActiveAlerts: pick(5), Mode: strs[pick(len(strs))], Enabled: pick(2) == 0,
			Host: strs[pick(len(strs))], Port: pick(65536), Source: strs[pick(len(strs))], AgentVersion: strs[pick(len(strs))],
			LastProbe: times[pick(len(times))], LatencyMS: floats[pick(len(floats))], ConsecutiveFailures: pick(100),
			LastErrorClass: strs[pick(len(strs))], LastError: strs[pick(len(strs))], StaleAfterSeconds: floats[pick(len(floats))],
			Since: times[pick(len(times))], Flapping: pick(2) == 0, MaintenanceUntil: times[pick(len(times))],
			MaintenanceReason: strs[pick(len(strs))], QuorumHeld: pick(2) == 0,
		}
		if pick(2) == 0 {
			age := rng.Int64N(1e9) - 5
			s.AgeSeconds = &age
		}
		if pick(2) == 0 {
			s.PhasesMS = &PhasesMS{floats[pick(len(floats))], floats[pick(len(floats))], floats[pick(len(floats))], floats[pick(len(floats))], floats[pick(len(floats))]}
		}
		if pick(2) == 0 {
			u := floats[pick(len(floats))]
			s.Uptime24h = &u
		}
		if pick(2) == 0 {
			s.SeenFrom = strs[pick(len(strs))]
			for range pick(3) {
				s.Locations = append(s.Locations, LocationView{Location: strs[pick(len(strs))], Says: strs[pick(len(strs))],
					LastOK: times[pick(len(times))], LastProbe: at.Add(time.Duration(pick(1000)) * time.Millisecond),
					ErrorClass: strs[pick(len(strs))], CutOff: pick(2) == 0})
			}
		}
		want, err := json.Marshal(&s)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, s)
		if got := s.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("row %d:\nAppendJSON   %s\nencoding/json %s", i, got, want)
		}
	}
	// Every field of the row is written: a field added to ServerStatus
	// without AppendJSON fails here.
	full := ServerStatus{SeenFrom: "x", QuorumHeld: true, Locations: []LocationView{{}}}
	var m map[string]any
	if err := json.Unmarshal(full.AppendJSON(nil), &m); err != nil {
		t.Fatal(err)
	}
	if n := reflect.TypeOf(full).NumField(); len(m) != n {
		t.Errorf("AppendJSON writes %d keys; ServerStatus has %d fields", len(m), n)
	}
}

func ptr[T any](v T) *T { return &v }
