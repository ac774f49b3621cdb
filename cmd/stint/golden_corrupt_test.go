package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/storage"
)

// TestCLIGoldenCorruptMeta: a golden volume whose meta.json is garbled
// does not break the pool: the next job that needs it has it destroyed and
// rebuilt, saying so, and passes; `stint gc` removes a corrupt golden and
// says so, and `image delete` removes one too. Nothing is left either way.
func TestCLIGoldenCorruptMeta(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.hello]
image = "busybox"
run = ["echo hello"]
`)
	out, code := f.run(t, "run", p)
	require.Equal(t, 0, code, out)
	ctx := context.Background()
	cfg := storage.Config{Driver: "overlay", Root: f.root}
	goldens := func() []string {
		t.Helper()
		drv, err := storage.Open(ctx, cfg)
		require.NoError(t, err)
		defer drv.Close()
		var ids []string
		require.NoError(t, drv.Walk(ctx, func(v storage.Volume) error { ids = append(ids, v.ID); return nil }))
		bad, err := storage.Corrupt(drv)
		require.NoError(t, err)
		assert.Empty(t, bad, "volumes with a corrupt record left")
		return ids
	}
	ids := goldens()
	require.Len(t, ids, 1, "the job should have made one golden volume")
	id := ids[0]
	garble := func() {
		t.Helper()
		m := filepath.Join(storage.PoolPath(cfg), "volumes", id, "meta.json")
		require.NoError(t, os.WriteFile(m, []byte(`{"id": "`+id+`", "ki`), 0o644))
	}

	garble()
	out, code = f.run(t, "run", p)
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "[hello] hello")
	assert.Regexp(t, `stint: golden volume `+id+`: corrupt record \(read .*/`+id+`/meta\.json: .*\): removed it, rebuilding\n`, out)
	f.assertClean(t)
	assert.Equal(t, []string{id}, goldens(), "the golden volume should be rebuilt")

	// gc repairs: it removes the corrupt golden and says so.
	garble()
	out, code = f.run(t, "gc")
	assert.Equal(t, 0, code, out)
	assert.Regexp(t, `removed golden volume `+id+` \(corrupt record: read .*/meta\.json: .*\)\n`, out)
	assert.Empty(t, goldens(), "gc should remove the corrupt golden")
	out, code = f.run(t, "run", p)
	require.Equal(t, 0, code, out)
	assert.NotContains(t, out, "corrupt")

	garble()
	fp := strings.TrimPrefix(id, "golden-")[:12]
	out, code = f.run(t, "image", "delete", fp)
	assert.Equal(t, 0, code, out)
	assert.Empty(t, goldens(), "image delete should remove the corrupt golden")
	left, err := os.ReadDir(filepath.Join(storage.PoolPath(cfg), "volumes"))
	require.NoError(t, err)
	assert.Empty(t, left, "pool entries left")
}
