package storage_test

import (
	"testing"

	"github.com/stintdev/stint/storage"
	"github.com/stintdev/stint/storage/storagetest"
)

func TestLVM(t *testing.T) {
	vg := lvmTestVG(t) // gate: in the vmtest guest only (make test-vm)
	storagetest.Suite(t, "lvm", func(t *testing.T) storage.Driver { return lvmThinPool(t, vg) })
}
