package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLongLivedLeavesNothing: what stint keeps of a long-lived container
// under --root (its stored spec, the spec it was started with, its console
// log) goes with it, both when `down` deletes it and when gc removes a
// record only its name is left of.
func TestLongLivedLeavesNothing(t *testing.T) {
	for _, how := range []string{"down", "gc"} {
		t.Run(how, func(t *testing.T) {
			f := newCLI(t)
			p := filepath.Join(f.dir, "stint.toml")
			require.NoError(t, os.WriteFile(p, []byte(`version = 1
name = "leftover"
[storage]
driver = "overlay"
[image.busybox]
builder = "busybox"
[container.app]
image = "busybox"
command = ["/bin/sh", "-c", "echo up; exec sleep 100000"]
`), 0o644))
			const rtName = "leftover.app"
			t.Cleanup(func() { _, _ = f.run(t, "down", "--set", "leftover") })
			out, code := f.run(t, "apply", p)
			require.Equal(t, 0, code, out)
			// The test means something only if there was something to leave.
			before := pathsNaming(t, f.root, rtName)
			require.Contains(t, before, filepath.Join("reconcile", rtName+".json"))
			require.Contains(t, before, filepath.Join("reconcile", rtName+".started.json"))
			owner := filepath.Join(f.root, "reconcile", "sets", "leftover.json")
			require.FileExists(t, owner, "the set's owner")

			switch how {
			case "down":
				out, code = f.run(t, "down", p)
				require.Equal(t, 0, code, out)
			case "gc":
				// A torn record (a crash mid-write) is all gc can read of it.
				rec := filepath.Join(f.root, "state", rtName+".json")
				require.NoError(t, os.WriteFile(rec, []byte(`{"name":`), 0o600))
				out, code = f.run(t, "gc")
				require.Equal(t, 0, code, out)
				require.Contains(t, out, "removed "+rtName)
			}
			assert.Empty(t, pathsNaming(t, f.root, rtName), "left under --root after %s", how)
			if how == "down" {
				assert.NoFileExists(t, owner, "down forgets the set's owner")
			}
			f.assertClean(t)
		})
	}
}

// pathsNaming lists the paths under root (relative to it) whose last
// element holds name.
func pathsNaming(t *testing.T, root, name string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), name) {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	}))
	return out
}
