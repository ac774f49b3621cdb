package lxcrt

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPayloadCgroup(t *testing.T) {
	for dir, want := range map[string]string{
		"/sys/fs/cgroup/freezer/lxc.payload.j1":               "/sys/fs/cgroup/freezer/lxc.payload.j1",
		"/sys/fs/cgroup/freezer/lxc.payload.j1/moved/deeper":  "/sys/fs/cgroup/freezer/lxc.payload.j1",
		"/sys/fs/cgroup/freezer/user.slice/lxc.payload.j1/x/": "/sys/fs/cgroup/freezer/user.slice/lxc.payload.j1",
	} {
		got, err := payloadCgroup(dir, "j1")
		require.NoError(t, err, dir)
		assert.Equal(t, want, got, dir)
	}
	for _, dir := range []string{"/sys/fs/cgroup/freezer", "/sys/fs/cgroup/freezer/lxc.payload.j10", "/sys/fs/cgroup/freezer/lxc.monitor.j1"} {
		_, err := payloadCgroup(dir, "j1")
		assert.Error(t, err, dir)
	}
}

// The mechanism of issue 16: nothing in the runtime freezes through
// liblxc (go-lxc's Container.Freeze and Unfreeze take no arguments; the
// freezer package's take a context), whose v1 freeze sleeps a second.
func TestNoLiblxcFreeze(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && len(call.Args) == 0 && (sel.Sel.Name == "Freeze" || sel.Sel.Name == "Unfreeze") {
				t.Errorf("%s: a liblxc %s() call; freeze with internal/freezer", fset.Position(call.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
	assert.Greater(t, checked, 3)
}
