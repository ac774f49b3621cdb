package storage_test

import (
	"testing"

	"github.com/stintdev/stint/storage"
	"github.com/stintdev/stint/storage/storagetest"
)

func TestZFS(t *testing.T) {
	pool := zfsTestPool(t) // gate: in the vmtest guest only (make test-vm)
	storagetest.Suite(t, "zfs", func(t *testing.T) storage.Driver { return zfsDataset(t, pool) })
}
