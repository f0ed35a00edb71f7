package store

import (
	"errors"
	"strings"
	"testing"
)

func TestServerSpecValidate(t *testing.T) {
	long := func(n int, c string) string { return strings.Repeat(c, n) }
	label63 := long(63, "a")
	host253 := strings.Join([]string{label63, label63, label63, long(61, "b")}, ".")
	ok := ServerSpec{Name: "web1", Host: "web1.example.net"}
	with := func(f func(*ServerSpec)) ServerSpec { s := ok; f(&s); return s }
	tests := []struct {
		name  string
		spec  ServerSpec
		field string // "" means valid; else a word the error must contain
	}{
		{"plain", ok, ""},
		{"unicode name", with(func(s *ServerSpec) { s.Name = "wébserveur 1" }), ""},
		{"name of 128", with(func(s *ServerSpec) { s.Name = long(128, "é") }), ""},
		{"name of 129", with(func(s *ServerSpec) { s.Name = long(129, "a") }), "name"},
		{"empty name", with(func(s *ServerSpec) { s.Name = "" }), "name"},
		{"blank name", with(func(s *ServerSpec) { s.Name = "  " }), "name"},
		{"leading space", with(func(s *ServerSpec) { s.Name = " web" }), "name"},
		{"trailing tab", with(func(s *ServerSpec) { s.Name = "web\t" }), "name"},
		{"newline", with(func(s *ServerSpec) { s.Name = "web\nfake line" }), "name"},
		{"escape sequence", with(func(s *ServerSpec) { s.Name = "web\x1b[31mred" }), "name"},
		{"DEL", with(func(s *ServerSpec) { s.Name = "web\x7f" }), "name"},
		{"C1 control", with(func(s *ServerSpec) { s.Name = "web\u009b" }), "name"},
		{"bidi override", with(func(s *ServerSpec) { s.Name = "web\u202e" }), "name"},
		{"invalid UTF-8", with(func(s *ServerSpec) { s.Name = "web\xff" }), "name"},
		{"all digits", with(func(s *ServerSpec) { s.Name = "42" }), "name"},
		{"IPv4", with(func(s *ServerSpec) { s.Host = "10.0.0.1" }), ""},
		{"IPv6", with(func(s *ServerSpec) { s.Host = "::1" }), ""},
		{"IPv6 with zone", with(func(s *ServerSpec) { s.Host = "fe80::1%eth0" }), ""},
		{"IPv6 in brackets", with(func(s *ServerSpec) { s.Host = "[::1]" }), "host"},
		{"single label", with(func(s *ServerSpec) { s.Host = "db" }), ""},
		{"trailing dot", with(func(s *ServerSpec) { s.Host = "db.example.net." }), ""},
		{"host of 253", with(func(s *ServerSpec) { s.Host = host253 }), ""},
		{"host of 254", with(func(s *ServerSpec) { s.Host = host253 + "b" }), "host"},
		{"10 MB host", with(func(s *ServerSpec) { s.Host = long(10<<20, "a") }), "host"},
		{"label of 64", with(func(s *ServerSpec) { s.Host = long(64, "a") + ".net" }), "host"},
		{"empty host", with(func(s *ServerSpec) { s.Host = "" }), "host"},
		{"host with space", with(func(s *ServerSpec) { s.Host = "a b" }), "host"},
		{"host with slash", with(func(s *ServerSpec) { s.Host = "a/b" }), "host"},
		{"host with port", with(func(s *ServerSpec) { s.Host = "a:22" }), "host"},
		{"host with underscore", with(func(s *ServerSpec) { s.Host = "a_b.net" }), "host"},
		{"leading hyphen", with(func(s *ServerSpec) { s.Host = "-a.net" }), "host"},
		{"empty label", with(func(s *ServerSpec) { s.Host = "a..net" }), "host"},
		{"host with newline", with(func(s *ServerSpec) { s.Host = "a\n.net" }), "host"},
		{"port 65535", with(func(s *ServerSpec) { s.Port = 65535 }), ""},
		{"port 65536", with(func(s *ServerSpec) { s.Port = 65536 }), "port"},
		{"negative port", with(func(s *ServerSpec) { s.Port = -1 }), "port"},
		{"user", with(func(s *ServerSpec) { s.User = "monitor" }), ""},
		{"user of 32", with(func(s *ServerSpec) { s.User = long(32, "u") }), ""},
		{"user of 33", with(func(s *ServerSpec) { s.User = long(33, "u") }), "user"},
		{"user with space", with(func(s *ServerSpec) { s.User = "a b" }), "user"},
		{"user with newline", with(func(s *ServerSpec) { s.User = "a\nb" }), "user"},
		{"key path with space", with(func(s *ServerSpec) { s.KeyPath = "/keys/my key" }), ""},
		{"key path of 4096", with(func(s *ServerSpec) { s.KeyPath = "/" + long(4095, "k") }), ""},
		{"key path of 4097", with(func(s *ServerSpec) { s.KeyPath = "/" + long(4096, "k") }), "key path"},
		{"key path with escape", with(func(s *ServerSpec) { s.KeyPath = "/k\x1b]0;x\x07" }), "key path"},
		{"mode push", with(func(s *ServerSpec) { s.Mode = ModePush }), ""},
		{"unknown mode", with(func(s *ServerSpec) { s.Mode = "pigeon" }), "mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want valid", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() accepted %.80q, want an error naming the %s", tt.spec.Name+" "+tt.spec.Host, tt.field)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.field) {
				t.Errorf("error %q does not name the %s", msg, tt.field)
			}
			// Errors are one line of bounded size, whatever the value.
			if strings.ContainsAny(msg, "\n\x1b") || len(msg) > 400 {
				t.Errorf("error is not one short printable line: %.200q", msg)
			}
		})
	}
}

func TestAlertSpecValidate(t *testing.T) {
	ok := AlertSpec{ServerID: 1, Kind: KindAlert, Severity: SeverityWarning, Message: "disk 91% full"}
	tests := []struct {
		name, msg, field string
	}{
		{"plain", "disk 91% full", ""},
		{"tab", "disk\tfull", ""},
		{"spaces at the ends", " disk full ", ""},
		{"1024 characters", strings.Repeat("m", 1024), ""},
		{"1025 characters", strings.Repeat("m", 1025), "message"},
		{"empty", " ", "message"},
		{"newline", "disk\nfull", "message"},
		{"escape", "\x1b[2J", "message"},
	}
	for _, tt := range tests {
		a := ok
		a.Message = tt.msg
		err := a.Validate()
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s: Validate() = %v, want valid", tt.name, err)
		case tt.field != "" && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.field)):
			t.Errorf("%s: Validate() = %v, want ErrInvalid naming the %s", tt.name, err, tt.field)
		}
	}
	for _, bad := range []AlertSpec{{Kind: "x", Severity: SeverityInfo, Message: "m"}, {Kind: KindAlert, Severity: "x", Message: "m"}} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestValidateMode(t *testing.T) {
	for mode, valid := range map[string]bool{ModeSSH: true, ModePush: true, "": false, "SSH": false, "pull": false} {
		if err := ValidateMode(mode); (err == nil) != valid || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("ValidateMode(%q) = %v, want valid=%v", mode, err, valid)
		}
	}
}

func TestValidateImport(t *testing.T) {
	tests := []struct {
		name  string
		specs []ServerSpec
		is    error
		words []string
	}{
		{"fine", []ServerSpec{{Name: "a", Host: "h"}, {Name: "b", Host: "h"}}, nil, nil},
		{"empty", nil, nil, nil},
		{"duplicate with lines", []ServerSpec{{Name: "a", Host: "h", Line: 4}, {Name: "b", Host: "h", Line: 7}, {Name: "a", Host: "x", Line: 9}}, ErrConflict, []string{`"a"`, "line 4", "line 9"}},
		{"duplicate without lines", []ServerSpec{{Name: "a", Host: "h"}, {Name: "a", Host: "h"}}, ErrConflict, []string{"row 1", "row 2"}},
		{"invalid row", []ServerSpec{{Name: "a", Host: "h", Line: 2}, {Name: "b", Host: "", Line: 3}}, ErrInvalid, []string{"line 3", "host"}},
	}
	for _, tt := range tests {
		err := ValidateImport(tt.specs)
		if tt.is == nil {
			if err != nil {
				t.Errorf("%s: %v, want nil", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, tt.is) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.is)
			continue
		}
		for _, w := range tt.words {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tt.name, err, w)
			}
		}
	}
}
