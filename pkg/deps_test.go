// Package pkg_test keeps the import graph pointing down, as STYLE.md lays
// it out: it reads the real graph with `go list` and fails on any import
// from a lower package to a higher one.
package pkg_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/stacksense/heartbeat/"

// pkgInfo is one package of ours: its direct imports and its transitive
// dependencies, both without test files and limited to our module, paths
// relative to it ("pkg/store").
type pkgInfo struct {
	Imports []string
	Deps    []string
}

// loadGraph runs `go list -json ./...` at the module root.
func loadGraph(t *testing.T) map[string]pkgInfo {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	graph := map[string]pkgInfo{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
			Deps       []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		graph[strings.TrimPrefix(p.ImportPath, module)] = pkgInfo{Imports: ours(p.Imports), Deps: ours(p.Deps)}
	}
	if len(graph) < 10 {
		t.Fatalf("go list found only %d packages; is this the module root?", len(graph))
	}
	return graph
}

func ours(paths []string) []string {
	var out []string
	for _, p := range paths {
		if rel, ok := strings.CutPrefix(p, module); ok {
			out = append(out, rel)
		}
	}
	return out
}

// under reports whether pkg is dir or inside it.
func under(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

// foundation are leaves the layers above config and status share: small
// vocabularies with no imports of ours (redaction of secrets; the probe
// failure classes).
var foundation = []string{"pkg/redact", "pkg/failure"}

// layeringViolations applies the rules of STYLE.md to graph and returns one
// line per broken rule.
func layeringViolations(graph map[string]pkgInfo) []string {
	var v []string
	// Rules on a package's transitive dependencies: pkg must not depend on
	// anything under the listed directories.
	never := []struct {
		pkg, why string
		not      []string
	}{
		{"pkg/probe", "probe runs without a database or a command line", []string{"pkg/store", "pkg/proberun", "pkg/cli", "pkg/api", "pkg/config", "pkg/doctor"}},
		{"pkg/api", "the API is below the command line", []string{"pkg/cli"}},
		{"pkg/store/postgres", "engines are independent and do not read settings", []string{"pkg/store/sqlite", "pkg/store/backend", "pkg/config"}},
		{"pkg/store/sqlite", "engines are independent and do not read settings", []string{"pkg/store/postgres", "pkg/store/backend", "pkg/config"}},
		{"pkg/store/backend", "backend.Open takes a resolved Target; cli translates config", []string{"pkg/config", "pkg/cli"}},
		{"pkg/notify", "notify sends one message to one channel; the drain above it reads the store", []string{"pkg/store", "pkg/config", "pkg/cli", "pkg/api", "pkg/proberun", "pkg/report", "pkg/doctor"}},
		{"pkg/store", "the store interface knows neither its engines nor settings", []string{"pkg/store/postgres", "pkg/store/sqlite", "pkg/store/backend", "pkg/config"}},
	}
	for _, r := range never {
		for pkg, info := range graph {
			if !under(pkg, r.pkg) || (r.pkg == "pkg/store" && pkg != "pkg/store") {
				continue
			}
			for _, d := range info.Deps {
				for _, bad := range r.not {
					if under(d, bad) {
						v = append(v, fmt.Sprintf("%s depends on %s (%s)", pkg, d, r.why))
					}
				}
			}
		}
	}
	// config and status sit at the bottom with the foundation leaves: none
	// of them imports anything of ours (STYLE.md).
	for _, leaf := range foundation {
		for _, imp := range graph[leaf].Imports {
			v = append(v, fmt.Sprintf("%s imports %s (a foundation leaf imports nothing of ours)", leaf, imp))
		}
	}
	for _, pkg := range []string{"pkg/config", "pkg/status"} {
		for _, imp := range graph[pkg].Imports {
			v = append(v, fmt.Sprintf("%s imports %s (%s imports nothing of ours)", pkg, imp, pkg))
		}
	}
	// Nothing imports the command line but the commands.
	for pkg, info := range graph {
		if under(pkg, "cmd") || under(pkg, "pkg/cli") {
			continue
		}
		if slices.ContainsFunc(info.Imports, func(i string) bool { return under(i, "pkg/cli") }) {
			v = append(v, fmt.Sprintf("%s imports pkg/cli (only cmd/ may)", pkg))
		}
	}
	slices.Sort(v)
	return v
}

// TestImportsPointDown fails on any import from a lower package to a
// higher one in the real graph.
func TestImportsPointDown(t *testing.T) {
	for _, line := range layeringViolations(loadGraph(t)) {
		t.Error(line)
	}
}

// TestLayeringRulesCatchUpwardImports: each rule fires on a graph that
// breaks it (the imports this module had before issue 8 among them), so
// TestImportsPointDown cannot pass vacuously.
func TestLayeringRulesCatchUpwardImports(t *testing.T) {
	base := func() map[string]pkgInfo {
		return map[string]pkgInfo{
			"pkg/redact":         {},
			"pkg/store":          {},
			"pkg/status":         {},
			"pkg/config":         {},
			"pkg/store/postgres": {Imports: []string{"pkg/store", "pkg/redact"}, Deps: []string{"pkg/store", "pkg/redact"}},
			"pkg/store/sqlite":   {Imports: []string{"pkg/store"}, Deps: []string{"pkg/store"}},
			"pkg/store/backend":  {Imports: []string{"pkg/store/postgres", "pkg/store/sqlite"}, Deps: []string{"pkg/store", "pkg/store/postgres", "pkg/store/sqlite", "pkg/redact"}},
			"pkg/probe":          {},
			"pkg/notify":         {},
			"pkg/api":            {Imports: []string{"pkg/store"}, Deps: []string{"pkg/store"}},
			"pkg/cli":            {Imports: []string{"pkg/api", "pkg/config"}, Deps: []string{"pkg/api", "pkg/config", "pkg/store", "pkg/redact"}},
			"cmd/heartbeat":      {Imports: []string{"pkg/cli"}, Deps: []string{"pkg/cli"}},
		}
	}
	if v := layeringViolations(base()); len(v) != 0 {
		t.Fatalf("a clean graph has violations: %v", v)
	}
	for _, c := range []struct {
		name, pkg, imp, want string
	}{
		{"config imports store (before issue 8)", "pkg/config", "pkg/store", "pkg/config imports pkg/store"},
		{"config imports a leaf", "pkg/config", "pkg/redact", "pkg/config imports pkg/redact"},
		{"backend imports config (before issue 8)", "pkg/store/backend", "pkg/config", "pkg/store/backend depends on pkg/config"},
		{"status imports store", "pkg/status", "pkg/api", "pkg/status imports pkg/api"},
		{"probe imports store", "pkg/probe", "pkg/store", "pkg/probe depends on pkg/store"},
		{"api imports cli", "pkg/api", "pkg/cli", "pkg/api imports pkg/cli"},
		{"engine imports engine", "pkg/store/sqlite", "pkg/store/postgres", "pkg/store/sqlite depends on pkg/store/postgres"},
		{"engine imports config", "pkg/store/postgres", "pkg/config", "pkg/store/postgres depends on pkg/config"},
		{"store imports an engine", "pkg/store", "pkg/store/sqlite", "pkg/store depends on pkg/store/sqlite"},
		{"notify imports store", "pkg/notify", "pkg/store", "pkg/notify depends on pkg/store"},
		{"redact imports anything", "pkg/redact", "pkg/status", "pkg/redact imports pkg/status"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := base()
			info := g[c.pkg]
			info.Imports = append(info.Imports, c.imp)
			info.Deps = append(append(info.Deps, c.imp), g[c.imp].Deps...)
			g[c.pkg] = info
			v := layeringViolations(g)
			if !slices.ContainsFunc(v, func(l string) bool { return strings.HasPrefix(l, c.want) }) {
				t.Errorf("violations %q lack %q", v, c.want)
			}
		})
	}
}
