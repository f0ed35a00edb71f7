package notify

import (
	"encoding/json"
	"time"
)

// PayloadVersion is the version of the JSON payload webhook receivers get
// (and exec scripts read on stdin). A change that could break a receiver
// (a field removed, renamed or retyped) gets a new version; fields may be
// added within a version, so receivers must ignore fields they do not know.
const PayloadVersion = 1

// Payload is the JSON body of a webhook delivery, version 1 (README:
// "Notifications: channel URLs"). Strings are as stored, not escaped: JSON
// encoding makes them safe to carry, and a receiver that prints them must
// escape them itself.
type Payload struct {
	Version int `json:"version"`
	// ID is the flip id of a one-event message, 0 for a grouped one.
	ID int64 `json:"id"`
	// IdempotencyKey is Message.Key: the same for every retry of this
	// delivery. Receivers drop a message whose key they have seen.
	IdempotencyKey string `json:"idempotency_key"`
	Grouped        bool   `json:"grouped"`
	Test           bool   `json:"test"`
	Channel        string `json:"channel,omitempty"`
	Source         string `json:"source,omitempty"`
	// SentAt is when this attempt was made (RFC 3339 UTC); it changes on
	// retries, the key does not. Receivers may refuse old deliveries to
	// stop replays.
	SentAt time.Time `json:"sent_at"`
	// Title and Text are the plain-text rendering every channel kind
	// shows (escaped).
	Title string `json:"title"`
	Text  string `json:"text"`
	// Counts is the number of events by new state ("OFFLINE": 12).
	Counts map[string]int `json:"counts"`
	Events []PayloadEvent `json:"events"`
}

// PayloadEvent is one event in a Payload.
type PayloadEvent struct {
	ID             int64     `json:"id"`
	IdempotencyKey string    `json:"idempotency_key"`
	Kind           string    `json:"kind"`
	ServerID       int64     `json:"server_id"`
	ServerName     string    `json:"server_name"`
	Host           string    `json:"host"`
	From           string    `json:"from"`
	To             string    `json:"to"`
	At             time.Time `json:"at"`
	Reason         string    `json:"reason"`
	// DownForSeconds is how long the server was (up) or has been
	// (reminder) down, whole seconds; 0 if unknown or not a recovery.
	DownForSeconds int64 `json:"down_for_seconds"`
}

// NewPayload builds the payload of m as sent at sentAt.
func NewPayload(m Message, sentAt time.Time) Payload {
	title, text := Text(m)
	p := Payload{
		Version:        PayloadVersion,
		IdempotencyKey: m.Key(),
		Grouped:        m.Grouped,
		Test:           m.Test,
		Channel:        m.Channel,
		Source:         m.Source,
		SentAt:         sentAt.UTC().Truncate(time.Second),
		Title:          title,
		Text:           text,
		Counts:         map[string]int{},
		Events:         make([]PayloadEvent, len(m.Events)),
	}
	if len(m.Events) == 1 && !m.Grouped {
		p.ID = m.Events[0].ID
	}
	for i, e := range m.Events {
		if e.To != "" {
			p.Counts[e.To]++
		}
		p.Events[i] = PayloadEvent{
			ID:             e.ID,
			IdempotencyKey: e.Key(),
			Kind:           e.Kind,
			ServerID:       e.ServerID,
			ServerName:     e.ServerName,
			Host:           e.Host,
			From:           e.From,
			To:             e.To,
			At:             e.At.UTC(),
			Reason:         e.Reason,
			DownForSeconds: int64(e.DownFor / time.Second),
		}
	}
	return p
}

// marshalPayload is the exact body that is signed and sent.
func marshalPayload(m Message, sentAt time.Time) ([]byte, error) {
	return json.Marshal(NewPayload(m, sentAt))
}
