package storage_test

import (
	"testing"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/storage"
	"github.com/stintdev/stint/storage/storagetest"
)

func TestBtrfs(t *testing.T) {
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "btrfs", "mkfs.btrfs", "losetup")
	storagetest.Suite(t, "btrfs", func(t *testing.T) storage.Driver { return btrfsPool(t, 512<<20) })
}
