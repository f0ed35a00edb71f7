package inventory

import (
	"regexp"
	"strings"
	"testing"
)

// lineProblem is the shape of every line of a ParseCSV error: it starts by
// naming the line of the file it is about.
var lineProblem = regexp.MustCompile(`^line [1-9][0-9]*[:,] `)

// FuzzImport checks that no input makes ParseCSV panic, and that it returns
// either specs that are all valid with distinct names, or an error whose
// every line names a line of the file and nothing else (no stack trace, no
// raw newline from the input).
func FuzzImport(f *testing.F) {
	for _, seed := range []string{
		"name,host,port,user,key\nweb1,10.0.0.1,,,\n",
		"name,host,port,user,key\nc-bq\"x,h,,,\n", // the stray quote that panicked
		"name,host,port,user,key\nok,h,,,\nc-bq\"x,h,,,\nok2,h2,,,\n",
		"name,host,port,user,key\n\"unterminated,h,,,\n",
		"name,host,port,user,key\n\"a\"b,h,,,\n",
		"name,ho\"st,port,user,key\n",
		"\"name\nx\",host,port,user,key\n",
		"name,host,port,user,key\n\"multi\nline\",h,,,\n",
		"name,host,port,user,key\nx,h,99999,,\nx,h,,,\n,h,,,\n",
		"name,host,port,user,key\nshort\n",
		"\ufeffname,host,port,user,key\r\nweb1,10.0.0.1,22,root,/k\r\n",
		"",
		"\"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		specs, err := ParseCSV(strings.NewReader(in))
		if err != nil {
			if specs != nil {
				t.Fatalf("ParseCSV returned %d specs with an error", len(specs))
			}
			msg := err.Error()
			if msg == "" {
				t.Fatal("empty error")
			}
			if strings.HasPrefix(msg, "empty file") {
				return
			}
			for _, l := range strings.Split(msg, "\n") {
				if !lineProblem.MatchString(l) {
					t.Fatalf("error line %q does not name a line of the file; whole error:\n%s", l, msg)
				}
			}
			return
		}
		seen := map[string]bool{}
		for _, s := range specs {
			if err := s.Validate(); err != nil {
				t.Fatalf("ParseCSV accepted an invalid spec %+v: %v", s, err)
			}
			if seen[s.Name] {
				t.Fatalf("ParseCSV accepted the name %q twice", s.Name)
			}
			seen[s.Name] = true
		}
	})
}
