package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

// Module is stint's module path.
const Module = "github.com/stintdev/stint"

// OurDeps returns the packages of this module that the package in the
// current directory depends on, even indirectly (itself excluded): the
// boundary tests' view of DESIGN.md's arrows.
func OurDeps(t *testing.T) []string {
	t.Helper()
	return ours(t, "{{.ImportPath}}", "-deps")
}

// OurImports returns the packages of this module that the package in the
// current directory imports directly (its tests' imports not included).
func OurImports(t *testing.T) []string {
	t.Helper()
	return ours(t, `{{join .Imports "\n"}}`)
}

func ours(t *testing.T, format string, flags ...string) []string {
	t.Helper()
	RequiresTool(t, "go")
	self, err := exec.Command("go", "list", ".").Output()
	if err != nil {
		t.Fatalf("go list .: %v", err)
	}
	args := append([]string{"list"}, flags...)
	out, err := exec.Command("go", append(args, "-f", format, ".")...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []string
	for _, p := range strings.Fields(string(out)) {
		if (p == Module || strings.HasPrefix(p, Module+"/")) && p != strings.TrimSpace(string(self)) {
			pkgs = append(pkgs, strings.TrimPrefix(p, Module+"/"))
		}
	}
	return pkgs
}
