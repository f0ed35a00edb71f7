package notify

import (
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReadmePayloadIsTheRealOne keeps the README's webhook example true:
// it has exactly the fields the sender writes, at the top and in an event,
// and its title and text are what Text renders for its event.
func TestReadmePayloadIsTheRealOne(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "**Webhook payload (version 1).**")
	if !ok {
		t.Fatal("README lacks the webhook payload section")
	}
	_, after, ok = strings.Cut(after, "```json\n")
	example, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("README's webhook payload section has no json block")
	}
	var doc Payload
	dec := json.NewDecoder(strings.NewReader(example))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("README example does not decode as a Payload: %v", err)
	}

	real, err := marshalPayload(downMessage(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var realMap, docMap map[string]any
	json.Unmarshal(real, &realMap)
	json.Unmarshal([]byte(example), &docMap)
	if got, want := sortedKeys(docMap), sortedKeys(realMap); !slices.Equal(got, want) {
		t.Errorf("README payload fields %v, sender writes %v", got, want)
	}
	docEvent := docMap["events"].([]any)[0].(map[string]any)
	realEvent := realMap["events"].([]any)[0].(map[string]any)
	if got, want := sortedKeys(docEvent), sortedKeys(realEvent); !slices.Equal(got, want) {
		t.Errorf("README event fields %v, sender writes %v", got, want)
	}

	// The example's rendering is what the sender would render.
	e := doc.Events[0]
	title, text := Text(Message{Events: []Event{{ID: e.ID, Kind: e.Kind, ServerID: e.ServerID, ServerName: e.ServerName,
		Host: e.Host, From: e.From, To: e.To, At: e.At, Reason: e.Reason}}})
	if doc.Title != title || doc.Text != text {
		t.Errorf("README title/text %q / %q; Text renders %q / %q", doc.Title, doc.Text, title, text)
	}
}

func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}
