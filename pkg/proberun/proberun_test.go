package proberun

import (
	"github.com/stacksense/heartbeat/pkg/failure"

	"testing"

	"github.com/stacksense/heartbeat/pkg/hostkey"
	"github.com/stacksense/heartbeat/pkg/probe"
)

// StoreResult decides which keys get pinned: a wrong decision either
// trusts a key nobody checked or never pins at all.
func TestStoreResultPinning(t *testing.T) {
	key := []byte("presented")
	tests := []struct {
		name     string
		result   probe.Result
		policy   hostkey.Policy
		hasPin   bool
		pin      bool
		seenOnly bool
	}{
		{"first success pins", probe.Result{OK: true, HostKey: key}, hostkey.PolicyPin, false, true, false},
		{"auth failure after the key check pins", probe.Result{Class: failure.Auth, HostKey: key}, hostkey.PolicyPin, false, true, false},
		{"exec failure pins", probe.Result{Class: failure.Exec, HostKey: key}, hostkey.PolicyPin, false, true, false},
		{"existing pin is never replaced", probe.Result{OK: true, HostKey: key}, hostkey.PolicyPin, true, false, false},
		{"handshake failure does not pin", probe.Result{Class: failure.Handshake, HostKey: key}, hostkey.PolicyPin, false, false, false},
		{"mismatch keeps the key as last seen", probe.Result{Class: failure.HostKeyMismatch, HostKey: key}, hostkey.PolicyPin, true, false, true},
		{"unknown host keeps the key as last seen", probe.Result{Class: failure.HostKeyUnknown, HostKey: key}, hostkey.PolicyKnownHosts, false, false, true},
		{"known-hosts never pins", probe.Result{OK: true, HostKey: key}, hostkey.PolicyKnownHosts, false, false, false},
		{"insecure never pins", probe.Result{OK: true, HostKey: key}, hostkey.PolicyInsecure, false, false, false},
		{"no key presented", probe.Result{Class: failure.Refused}, hostkey.PolicyPin, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StoreResult(tt.result, tt.policy, tt.hasPin)
			if (got.PinHostKey != nil) != tt.pin || (got.SeenHostKey != nil) != tt.seenOnly {
				t.Errorf("pin=%v seen=%v, want pin=%v seen=%v", got.PinHostKey != nil, got.SeenHostKey != nil, tt.pin, tt.seenOnly)
			}
			// A key that passed the check clears a stale last-seen key.
			if accepted := got.AcceptedHostKey != nil; accepted != (tt.result.HostKey != nil && tt.result.Class.PastHostKeyCheck()) || (accepted && got.SeenHostKey != nil) {
				t.Errorf("accepted=%v for %+v", accepted, tt.result)
			}
			if got.OK != tt.result.OK || got.ErrorClass != string(tt.result.Class) {
				t.Errorf("outcome not carried over: %+v", got)
			}
		})
	}
}
