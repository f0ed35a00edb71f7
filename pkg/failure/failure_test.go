package failure

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestAttributes(t *testing.T) {
	connect := map[Class]bool{DNS: true, Refused: true, Unreachable: true, Timeout: true}
	past := map[Class]bool{"": true, Auth: true, Exec: true}
	for _, c := range append(Classes(), "") {
		if got := c.Connect(); got != connect[c] {
			t.Errorf("%q.Connect() = %v", c, got)
		}
		if got := c.PastHostKeyCheck(); got != past[c] {
			t.Errorf("%q.PastHostKeyCheck() = %v", c, got)
		}
		if c != "" && (!c.Known() || c.Advice() == "" || c.Advice() == Class("nonsense").Advice()) {
			t.Errorf("%q has no attributes of its own", c)
		}
	}
	if Class("nonsense").Known() || Class("nonsense").Connect() {
		t.Error("an unknown class has attributes")
	}
}

// TestNoClassLiteralsElsewhere keeps this package the one vocabulary: no
// non-test Go file outside it spells a class name as a string literal.
func TestNoClassLiteralsElsewhere(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "github.com/stacksense/heartbeat/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	self, _ := filepath.Abs(".")
	var quoted []string
	for _, c := range Classes() {
		quoted = append(quoted, regexp.QuoteMeta(`"`+string(c)+`"`))
	}
	re := regexp.MustCompile(strings.Join(quoted, "|"))
	checked := 0
	for _, dir := range strings.Fields(string(out)) {
		if dir == self {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			for i, line := range strings.Split(string(b), "\n") {
				if m := re.FindString(line); m != "" && !allowed(f, line) {
					t.Errorf("%s:%d retypes failure class %s: use pkg/failure", f, i+1, m)
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d files; is the module layout different?", checked)
	}
}

// allowed lists lines where the same word is not a failure class.
func allowed(file, line string) bool {
	switch {
	case strings.Contains(file, "storetest"):
		return true // rows of test data for the store, which keeps classes as text
	case strings.Contains(file, "sshtest") && strings.Contains(line, `"exec"`):
		return true // an SSH channel request type, RFC 4254
	case strings.Contains(file, "probe") && strings.Contains(line, `return "handshake"`):
		return true // the name of a probe phase
	}
	return false
}
