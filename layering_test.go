package main

// The import layering of /work/shared/guide/ARCHITECTURE.md (docs/ARCHITECTURE.md
// once it is copied there), checked on every `make test` and `make lint`.
//
// Imports point down the ladder in layers, never up, and never sideways
// between components of one layer (http <-> grpc, mvcc <-> lease <-> auth).
// A component is one entry of a layer: a directory and everything below it.
// Packages inside one component (engine, engine/memory, engine/rocksdb) may
// import each other, subject to the extra rules in importRules.
//
// Test files are held to the same rules as the code they test: a cycle or an
// upward dependency that only tests need is still a design smell, and
// black-box tests that need the whole stack belong in test/.
//
// A project package that matches no component fails the check: a new
// top-level directory is an architecture decision, so it must be placed in
// the ladder here (and there are no util/common packages to put anywhere).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const modulePath = "github.com/metastore/metastore"

// layers is the ladder, top first. Rank is implied by position.
var layers = []struct {
	name       string
	components []string // package patterns relative to the module root
}{
	{"black-box tests", []string{"test/..."}},
	{"main", []string{"."}},
	{"front ends and load generator", []string{"http/...", "grpc/...", "bench/..."}},
	// etcderr: etcd's API errors for the lower layers' sentinels, shared by
	// both front ends so their answers cannot drift apart.
	{"API errors", []string{"etcderr/..."}},
	// migrate (etcd data into an engine, through mvcc and lease) is a tool
	// the CLI runs inside server.ImportDataDir; it does not import server.
	{"server", []string{"server/...", "migrate/..."}},
	{"raft", []string{"raft/..."}},
	{"state machine", []string{"mvcc/...", "lease/...", "auth/..."}},
	{"engine", []string{"engine/..."}},
	{"native", []string{"native/..."}},
	// version is a leaf any layer may read (for /version, Status replies).
	{"version", []string{"version"}},
}

// importRule forbids imports the ladder alone would allow (or states a
// ladder consequence explicitly, with its reason).
type importRule struct {
	name       string
	from       []string // importer patterns (project-relative); "..." is every package
	exceptFrom []string
	to         []string // imported patterns: project-relative, or full external paths
	exceptTo   []string
	external   bool // to/exceptTo are external (non-project) import paths
	prodOnly   bool // only non-test imports are checked
	why        string
}

var importRules = []importRule{
	{
		name:       "native-private",
		from:       []string{"..."},
		exceptFrom: []string{"engine/rocksdb/...", "native/...", "test/..."},
		to:         []string{"native/..."},
		why:        "only engine/rocksdb imports the cgo shim",
	},
	{
		name:     "bench-client-only",
		from:     []string{"bench/..."},
		to:       []string{"..."},
		exceptTo: []string{"bench/..."},
		why:      "bench drives MetaStore and real etcd alike, through the etcd client only",
	},
	{
		name:     "engine-no-protobuf",
		from:     []string{"engine/..."},
		external: true,
		to: []string{
			"google.golang.org/protobuf/...", "github.com/golang/protobuf/...",
			"github.com/gogo/protobuf/...", "go.etcd.io/etcd/...", "go.etcd.io/raft/...",
		},
		why: "the engine knows nothing about revisions, raft or protobuf types",
	},
	{
		name: "raft-no-state-machine",
		from: []string{"raft/..."},
		to:   []string{"mvcc/...", "lease/...", "auth/..."},
		why:  "raft hands committed entries to an Applier it defines; server implements it",
	},
	{
		name:     "engine-impls-independent",
		from:     []string{"engine/memory/...", "engine/rocksdb/..."},
		to:       []string{"engine/memory/...", "engine/rocksdb/..."},
		prodOnly: true,
		why:      "engine implementations share only the engine contract",
	},
	{
		name:     "engine-contract-standalone",
		from:     []string{"engine"},
		to:       []string{"engine/..."},
		exceptTo: []string{"engine"},
		prodOnly: true,
		why:      "the engine contract must not depend on its implementations",
	},
	{
		name:       "enginetest-tests-only",
		from:       []string{"..."},
		exceptFrom: []string{"engine/enginetest/...", "test/..."},
		to:         []string{"engine/enginetest/..."},
		prodOnly:   true,
		why:        "the conformance suite imports testing; only tests may use it",
	},
	{
		name:       "nothing-imports-test",
		from:       []string{"..."},
		exceptFrom: []string{"test/..."},
		to:         []string{"test/..."},
		why:        "test/ holds black-box tests on top of everything",
	},
}

// importEdge is one import: package from imports package to, in its non-test
// files or (test=true) in its _test.go files.
type importEdge struct {
	from, to string // full import paths
	test     bool
}

type violation struct {
	rule string // "upward", "sideways", "unplaced" or an importRule name
	edge importEdge
	why  string
}

func (v violation) String() string {
	kind := "imports"
	if v.edge.test {
		kind = "imports (in tests)"
	}
	if v.rule == "unplaced" {
		return fmt.Sprintf("%s is not placed in the layering: %s", v.edge.from, v.why)
	}
	return fmt.Sprintf("%s %s %s: %s (%s)", v.edge.from, kind, v.edge.to, v.why, v.rule)
}

// relPath returns the module-relative path of a project package ("." for the
// root) and whether importPath belongs to the project at all.
func relPath(importPath string) (string, bool) {
	switch {
	case importPath == modulePath:
		return ".", true
	case strings.HasPrefix(importPath, modulePath+"/"):
		return strings.TrimPrefix(importPath, modulePath+"/"), true
	}
	return "", false
}

// matchPattern reports whether p matches pattern, where "x/..." matches x and
// everything below it, "..." matches everything and anything else is exact.
func matchPattern(pattern, p string) bool {
	if pattern == "..." {
		return true
	}
	if dir, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == dir || strings.HasPrefix(p, dir+"/")
	}
	return p == pattern
}

func matchAny(patterns []string, p string) bool {
	for _, pat := range patterns {
		if matchPattern(pat, p) {
			return true
		}
	}
	return false
}

// placement finds the component of a project-relative package path: its
// rank (0 = top) and the component pattern. Most specific pattern wins.
func placement(rel string) (rank int, component string, ok bool) {
	best := -1
	for i, l := range layers {
		for _, c := range l.components {
			if matchPattern(c, rel) && len(c) > best {
				best, rank, component, ok = len(c), i, c, true
			}
		}
	}
	return rank, component, ok
}

// checkLayering returns every violation among the project packages pkgs
// (full import paths) and their imports, sorted. Edges to packages outside
// the project are checked only against external rules.
func checkLayering(pkgs []string, edges []importEdge) []violation {
	var out []violation
	unplaced := map[string]bool{}
	for _, pkg := range pkgs {
		rel, ok := relPath(pkg)
		if _, _, placed := placement(rel); ok && !placed && !unplaced[pkg] {
			unplaced[pkg] = true
			out = append(out, violation{rule: "unplaced", edge: importEdge{from: pkg},
				why: "add its directory to layers in layering_test.go (no util/common packages)"})
		}
	}
	for _, e := range edges {
		from, ok := relPath(e.from)
		if !ok {
			continue
		}
		fromRank, fromComp, placed := placement(from)
		if !placed {
			continue // reported once above
		}
		to, internal := relPath(e.to)
		target := to
		if !internal {
			target = e.to
		}
		if internal {
			if toRank, toComp, ok := placement(to); ok && toComp != fromComp {
				switch {
				case toRank < fromRank:
					out = append(out, violation{rule: "upward", edge: e,
						why: fmt.Sprintf("layer %q is above layer %q", layers[toRank].name, layers[fromRank].name)})
				case toRank == fromRank:
					out = append(out, violation{rule: "sideways", edge: e,
						why: fmt.Sprintf("%s and %s are siblings in layer %q", fromComp, toComp, layers[fromRank].name)})
				}
			}
		}
		for _, r := range importRules {
			if r.external == internal || (r.prodOnly && e.test) {
				continue
			}
			if !matchAny(r.from, from) || matchAny(r.exceptFrom, from) {
				continue
			}
			if !matchAny(r.to, target) || matchAny(r.exceptTo, target) {
				continue
			}
			out = append(out, violation{rule: r.name, edge: e, why: r.why})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// listedPackage is the part of `go list -json` output the check needs.
type listedPackage struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

// projectImports lists the direct imports of every package in the module,
// test imports included. Direct edges suffice: any upward path through the
// graph contains an upward edge.
func projectImports(t *testing.T) (pkgs []string, edges []importEdge) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go command not found: %v", err)
	}
	cmd := exec.Command(goBin, "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Error", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		if p.Error != nil {
			// A package that does not build is reported by the build; its
			// imports as far as they parse are still checked here.
			t.Logf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p.ImportPath)
		for _, imp := range p.Imports {
			edges = append(edges, importEdge{from: p.ImportPath, to: imp})
		}
		for _, imp := range append(p.TestImports, p.XTestImports...) {
			edges = append(edges, importEdge{from: p.ImportPath, to: imp, test: true})
		}
	}
	return pkgs, edges
}

func TestImportLayering(t *testing.T) {
	pkgs, edges := projectImports(t)
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	t.Logf("checked %d imports of %d packages", len(edges), len(pkgs))
	for _, v := range checkLayering(pkgs, edges) {
		t.Error(v)
	}
}

// TestCheckLayering proves the checker fails on each kind of violation and
// stays quiet on the imports the architecture allows.
func TestCheckLayering(t *testing.T) {
	p := func(rel string) string {
		if rel == "." {
			return modulePath
		}
		return modulePath + "/" + rel
	}
	prod := func(from, to string) importEdge { return importEdge{from: p(from), to: p(to)} }
	test := func(from, to string) importEdge { return importEdge{from: p(from), to: p(to), test: true} }
	ext := func(from, to string) importEdge { return importEdge{from: p(from), to: to} }

	tests := []struct {
		name  string
		edges []importEdge
		want  []string // violated rules, sorted
	}{
		{
			name: "the architecture's own graph is clean",
			edges: []importEdge{
				prod(".", "grpc"), prod(".", "http"), prod(".", "bench"), prod(".", "server"),
				prod(".", "engine/rocksdb"), prod(".", "version"),
				prod("grpc", "server"), prod("grpc", "mvcc"), prod("http", "server"),
				prod("server", "raft"), prod("server", "mvcc"), prod("server", "lease"), prod("server", "auth"),
				prod("server", "version"),
				prod(".", "migrate"), prod("migrate", "mvcc"), prod("migrate", "lease"), prod("migrate", "engine"),
				ext("migrate", "go.etcd.io/bbolt"),
				prod("raft", "engine"), ext("raft", "go.etcd.io/raft/v3"),
				prod("mvcc", "engine"), prod("lease", "engine"), prod("auth", "engine"),
				prod("engine/memory", "engine"), prod("engine/rocksdb", "engine"),
				prod("engine/rocksdb", "native"), prod("engine/enginetest", "engine"),
				test("engine/memory", "engine/enginetest"), test("engine/rocksdb", "engine/enginetest"),
				test("engine/rocksdb", "engine/memory"), test("native", "native"),
				test("mvcc", "engine/memory"),
				prod("bench", "bench/workload"), ext("bench", "go.etcd.io/etcd/client/v3"),
				prod("test", "server"), prod("test", "grpc"), prod("test", "native"),
				ext("engine", "bytes"), ext("native", "unsafe"),
			},
			want: []string{},
		},
		{
			name:  "mvcc imports server",
			edges: []importEdge{prod("mvcc", "server")},
			want:  []string{"upward"},
		},
		{
			name:  "migrate imports server",
			edges: []importEdge{prod("migrate", "server")},
			want:  []string{"sideways"},
		},
		{
			name:  "native imports engine, even in tests",
			edges: []importEdge{test("native", "engine")},
			want:  []string{"upward"},
		},
		{
			name:  "grpc imports http",
			edges: []importEdge{prod("grpc/kv", "http")},
			want:  []string{"sideways"},
		},
		{
			name:  "lease imports mvcc",
			edges: []importEdge{prod("lease", "mvcc")},
			want:  []string{"sideways"},
		},
		{
			name:  "raft imports mvcc",
			edges: []importEdge{prod("raft", "mvcc")},
			want:  []string{"raft-no-state-machine"},
		},
		{
			name:  "mvcc imports native",
			edges: []importEdge{prod("mvcc", "native")},
			want:  []string{"native-private"},
		},
		{
			name:  "engine/memory imports native",
			edges: []importEdge{prod("engine/memory", "native")},
			want:  []string{"native-private"},
		},
		{
			name: "engine imports protobuf and etcd types",
			edges: []importEdge{
				ext("engine/rocksdb", "google.golang.org/protobuf/proto"),
				ext("engine", "go.etcd.io/etcd/api/v3/mvccpb"),
			},
			want: []string{"engine-no-protobuf", "engine-no-protobuf"},
		},
		{
			name:  "bench imports a project package",
			edges: []importEdge{prod("bench", "version")},
			want:  []string{"bench-client-only"},
		},
		{
			name:  "engine implementations import each other",
			edges: []importEdge{prod("engine/rocksdb", "engine/memory")},
			want:  []string{"engine-impls-independent"},
		},
		{
			name:  "engine contract imports an implementation",
			edges: []importEdge{prod("engine", "engine/memory")},
			want:  []string{"engine-contract-standalone"},
		},
		{
			name:  "production code imports the conformance suite",
			edges: []importEdge{prod("engine/memory", "engine/enginetest")},
			want:  []string{"enginetest-tests-only"},
		},
		{
			name:  "server imports test helpers",
			edges: []importEdge{prod("server", "test")},
			want:  []string{"nothing-imports-test", "upward"}, // sorted
		},
		{
			name:  "a util package appears",
			edges: []importEdge{ext("util", "bytes"), ext("util", "strings")},
			want:  []string{"unplaced"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pkgs []string
			for _, e := range tt.edges {
				pkgs = append(pkgs, e.from)
			}
			got := []string{}
			for _, v := range checkLayering(pkgs, tt.edges) {
				got = append(got, v.rule)
				t.Logf("reported: %s", v)
			}
			sort.Strings(got)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("violations = %v, want %v", got, tt.want)
			}
		})
	}
}
