package storage_test

import (
	"context"
	"testing"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/storage"
	"github.com/stintdev/stint/storage/storagetest"
)

func TestDir(t *testing.T) {
	testenv.RequiresRoot(t)
	storagetest.Suite(t, "dir", func(t *testing.T) storage.Driver {
		return openPool(t, storage.Config{Driver: "dir", Root: t.TempDir()})
	})
}

// openPool opens cfg's pool and closes it in t.Cleanup.
func openPool(t testing.TB, cfg storage.Config) storage.Driver {
	t.Helper()
	d, err := storage.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open %s pool: %v", cfg.Driver, err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}
