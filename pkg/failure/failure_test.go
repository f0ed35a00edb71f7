package failure

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
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
// non-test Go file outside it compares with, switches on or keys a map by
// a class name spelled as a string literal (what status and doctor did).
// Other uses of the same words (a flag named "timeout", the "exec" channel
// request, a phase label) are not classes and pass.
func TestNoClassLiteralsElsewhere(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "github.com/stacksense/heartbeat/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	self, _ := filepath.Abs(".")
	names := map[string]bool{}
	for _, c := range Classes() {
		names[strconv.Quote(string(c))] = true
	}
	isClass := func(e ast.Expr) bool {
		lit, ok := e.(*ast.BasicLit)
		return ok && lit.Kind == token.STRING && names[lit.Value]
	}
	checked := 0
	fset := token.NewFileSet()
	for _, dir := range strings.Fields(string(out)) {
		if dir == self {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") || strings.Contains(f, "storetest") || strings.Contains(f, "sshtest") ||
				strings.Contains(f, filepath.Join("pkg", "notify")) {
				// storetest's rows are test data for a store that
				// keeps classes as text; sshtest's "exec" is an SSH
				// channel request type (RFC 4254); notify's "exec" is
				// a channel URL kind and its "auth" and "timeout" are
				// URL query parameters.
				continue
			}
			file, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			ast.Inspect(file, func(n ast.Node) bool {
				var hits []ast.Expr
				switch n := n.(type) {
				case *ast.BinaryExpr:
					if n.Op == token.EQL || n.Op == token.NEQ {
						hits = append(hits, n.X, n.Y)
					}
				case *ast.CaseClause:
					hits = n.List
				case *ast.KeyValueExpr:
					hits = append(hits, n.Key)
				}
				for _, h := range hits {
					if isClass(h) {
						t.Errorf("%s retypes failure class %s: use pkg/failure", fset.Position(h.Pos()), h.(*ast.BasicLit).Value)
					}
				}
				return true
			})
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d files; is the module layout different?", checked)
	}
}
