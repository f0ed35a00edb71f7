package pkg_test

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestArchitectureMatchesImports keeps ARCHITECTURE.md true: its import
// table must list every package of ours with exactly the packages of ours
// it imports, as `go list` reports them. A new package or import fails
// here until the page says so.
func TestArchitectureMatchesImports(t *testing.T) {
	graph := loadGraph(t)
	doc := readArchitectureImports(t)
	for pkg, info := range graph {
		want := slices.Clone(info.Imports)
		slices.Sort(want)
		got, ok := doc[pkg]
		if !ok {
			t.Errorf("ARCHITECTURE.md does not list %s (it imports: %s)", pkg, list(want))
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("ARCHITECTURE.md says %s imports %s; go list says %s", pkg, list(got), list(want))
		}
	}
	for pkg := range doc {
		if _, ok := graph[pkg]; !ok {
			t.Errorf("ARCHITECTURE.md lists %s, which is not a package of the module", pkg)
		}
	}
}

func list(pkgs []string) string {
	if len(pkgs) == 0 {
		return "nothing of ours"
	}
	return strings.Join(pkgs, ", ")
}

// readArchitectureImports parses the import table of ARCHITECTURE.md: the
// lines between "<!-- imports -->" and "<!-- /imports -->" of the form
// "- pkg/x → pkg/a, pkg/b" ("→ —" for none).
func readArchitectureImports(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc := map[string][]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "<!-- imports -->":
			in = true
			continue
		case line == "<!-- /imports -->":
			in = false
			continue
		}
		if !in || !strings.Contains(line, "→") {
			continue
		}
		from, to, _ := strings.Cut(strings.TrimPrefix(line, "- "), "→")
		pkg := strings.TrimSpace(from)
		var imports []string
		for _, p := range strings.Split(to, ",") {
			if p = strings.TrimSpace(p); p != "" && p != "—" {
				imports = append(imports, p)
			}
		}
		slices.Sort(imports)
		doc[pkg] = imports
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(doc) == 0 {
		t.Fatal("ARCHITECTURE.md has no import table between <!-- imports --> and <!-- /imports -->")
	}
	return doc
}
