package storage_test

import (
	"testing"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/storage"
	"github.com/stintdev/stint/storage/storagetest"
)

func TestOverlay(t *testing.T) {
	testenv.RequiresRoot(t)
	storagetest.Suite(t, "overlay", func(t *testing.T) storage.Driver {
		return openPool(t, storage.Config{Driver: "overlay", Root: t.TempDir()})
	})
}
