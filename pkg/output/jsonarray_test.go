package output_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/output"
)

// TestJSONArrayMatchesJSON: the streamed array is byte for byte what JSON
// writes for the same slice, so `status --json` did not change shape when
// it started streaming.
func TestJSONArrayMatchesJSON(t *testing.T) {
	type row struct {
		ID   int64      `json:"id"`
		Name string     `json:"name"`
		At   *time.Time `json:"at"`
		Tags []string   `json:"tags"`
		Sub  *struct {
			X float64 `json:"x"`
		} `json:"sub"`
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, rows := range map[string][]row{
		"nil":   nil,
		"empty": {},
		"one":   {{ID: 1, Name: "a<b>&", At: &now}},
		"three": {{ID: 1, Name: "web1", Tags: []string{"x", "y"}}, {ID: 2, Name: "dé\u2028"}, {ID: 3, Sub: &struct {
			X float64 `json:"x"`
		}{X: 1.5}}},
	} {
		var want, got bytes.Buffer
		if err := output.JSON(&want, rows); err != nil {
			t.Fatal(err)
		}
		if err := output.JSONArray(&got, rows); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%s: JSONArray wrote\n%s\nJSON writes\n%s", name, got.String(), want.String())
		}
	}
}
