package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
)

// TestRootBlockedAncestor: a --root whose ancestor others can't search (a
// 0700 home) is a host error (3) naming that ancestor and what to do; stint
// changes no mode and makes nothing under it.
func TestRootBlockedAncestor(t *testing.T) {
	base := t.TempDir()
	testenv.Reachable(t, base)
	home := filepath.Join(base, "home")
	require.NoError(t, os.Mkdir(home, 0o700))
	require.NoError(t, os.Chmod(home, 0o700))
	root := filepath.Join(home, "stint")
	for _, args := range [][]string{{"gc"}, {"run", "../../testdata/demo/demo.toml"}} {
		var out, errb bytes.Buffer
		code := run(append([]string{"--root", root}, args...), &out, &errb)
		assert.Equal(t, ExitHost, code, "%v: %s", args, errb.String())
		assert.Contains(t, errb.String(), home+" is mode 0700", args)
		assert.Contains(t, errb.String(), "chmod o+x "+home, args)
		fi, err := os.Stat(home)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o700), fi.Mode().Perm(), "%v changed the ancestor's mode", args)
		_, err = os.Stat(root)
		assert.True(t, os.IsNotExist(err), "%v made --root under a blocked ancestor", args)
	}
}
