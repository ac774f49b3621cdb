package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/storage"
)

// TestSetOwnershipCLI: two unrelated projects in directories both called
// app, neither with a `name` key, form sets of the same name. The second one's
// plan, apply and down are refused with exit 2 and the owner's directory;
// the first one's container is untouched.
func TestSetOwnershipCLI(t *testing.T) {
	bin, dir := builtStint(t)
	root := filepath.Join(dir, "root")
	stint := stintCLI(t, bin, root)
	project := func(parent string) string {
		p := filepath.Join(dir, parent, "app")
		require.NoError(t, os.MkdirAll(p, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(p, "stint.toml"), []byte(`version = 1
[image.bb]
builder = "busybox"
[container.web]
image = "bb"
command = ["/bin/sh", "-c", "exec sleep 100000"]
`), 0o644))
		return p
	}
	first, second := project("one"), project("two")
	t.Cleanup(func() {
		_, _ = stint("down", first)
		ctx := context.Background()
		if drv, err := storage.Open(ctx, storage.Config{Driver: "auto", Root: root}); err == nil {
			var ids []string
			_ = drv.Walk(ctx, func(v storage.Volume) error { ids = append(ids, v.ID); return nil })
			for i := len(ids) - 1; i >= 0; i-- {
				_ = drv.Destroy(ctx, ids[i])
			}
			_ = drv.Close()
		}
	})

	out, code := stint("apply", first)
	require.Equal(t, 0, code, out)
	for _, cmd := range []string{"plan", "apply", "down"} {
		out, code = stint(cmd, second)
		assert.Equal(t, ExitUsage, code, "%s from the other directory: %s", cmd, out)
		assert.Contains(t, out, "set app is owned by specs in "+first, cmd)
	}
	out, code = stint("plan", first)
	assert.Equal(t, 0, code, "the owner's container is untouched: %s", out)
	out, code = stint("down", first)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "web deleted")
}
