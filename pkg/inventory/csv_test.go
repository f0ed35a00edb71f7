package inventory

import (
	"strings"
	"testing"

	"github.com/stacksense/heartbeat/pkg/store"
)

func TestParseCSV(t *testing.T) {
	in := "\ufeffname,host,port,user,key\nweb1,10.0.0.1,,,\ndb1,db.internal,2222,ops,/keys/db\n"
	specs, err := ParseCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []store.ServerSpec{
		{Name: "web1", Host: "10.0.0.1", Line: 2},
		{Name: "db1", Host: "db.internal", Port: 2222, User: "ops", KeyPath: "/keys/db", Line: 3},
	}
	if len(specs) != len(want) {
		t.Fatalf("got %d specs, want %d", len(specs), len(want))
	}
	for i := range want {
		if specs[i] != want[i] {
			t.Errorf("spec %d = %+v, want %+v", i, specs[i], want[i])
		}
	}
}

func TestParseCSVReportsEveryBadLine(t *testing.T) {
	in := strings.Join([]string{
		"name,host,port,user,key",
		"ok1,h1,22,,",
		",h2,,,",             // line 3: empty name
		"bad-host,,,,",       // line 4: empty host
		"bad-port,h,99999,,", // line 5: port out of range
		"word-port,h,ssh,,",  // line 6: port not a number
		"ok1,h9,,,",          // line 7: duplicate of line 2
		"short,h",            // line 8: too few fields
	}, "\n")
	specs, err := ParseCSV(strings.NewReader(in))
	if err == nil {
		t.Fatal("ParseCSV accepted a file with bad rows")
	}
	if specs != nil {
		t.Errorf("ParseCSV returned %d specs alongside errors; want none", len(specs))
	}
	for _, want := range []string{
		"line 3: server name is empty",
		"line 4: server \"bad-host\": host is empty",
		"line 5: port \"99999\"",
		"line 6: port \"ssh\"",
		"line 7: server name \"ok1\" already appears on line 2",
		"line 8: 2 fields",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestParseCSVHeader(t *testing.T) {
	for _, in := range []string{"", "host,name,port,user,key\n", "name,host\n"} {
		if _, err := ParseCSV(strings.NewReader(in)); err == nil {
			t.Errorf("ParseCSV(%q) accepted a bad header", in)
		}
	}
}
