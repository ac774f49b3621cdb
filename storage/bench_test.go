package storage_test

import (
	"testing"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/storage"
	"github.com/stintdev/stint/storage/storagetest"
)

// BenchmarkClone: clone+destroy per driver for a 1 MiB and a 1 GiB golden
// volume; btrfs and overlay take the same time for both (O(1) clones), dir
// copies (with reflinks where the filesystem has them). zfs and lvm run
// only in the vmtest guest (see vm_test.go), e.g.
//
//	go test -c -o /tmp/storage.test ./storage
//	vmtest/run-in-vm.sh -u -d 4G -d 4G -e VMTEST_DISK=/dev/vda \
//	  -e VMTEST_ZFS_DISK=/dev/vdb -e STINT_VM=1 -- /tmp/storage.test \
//	  -test.run XXX -test.bench 'Clone/(zfs|lvm)' -test.benchtime 10x
func BenchmarkClone(b *testing.B) {
	drivers := []struct {
		name string
		open func(b *testing.B, size int64) storage.Driver
	}{
		{"btrfs", func(b *testing.B, size int64) storage.Driver {
			testenv.RequiresTool(b, "btrfs", "mkfs.btrfs", "losetup")
			return btrfsPool(b, 2*size+512<<20)
		}},
		{"overlay", func(b *testing.B, _ int64) storage.Driver {
			return openPool(b, storage.Config{Driver: "overlay", Root: b.TempDir()})
		}},
		{"dir", func(b *testing.B, _ int64) storage.Driver {
			return openPool(b, storage.Config{Driver: "dir", Root: b.TempDir()})
		}},
		{"zfs", func(b *testing.B, _ int64) storage.Driver {
			return zfsDataset(b, zfsTestPool(b))
		}},
		{"lvm", func(b *testing.B, size int64) storage.Driver {
			return lvmThinPoolSized(b, lvmTestVG(b), 2*size+512<<20, size+256<<20)
		}},
	}
	sizes := []struct {
		name string
		size int64
	}{{"1MiB", 1 << 20}, {"1GiB", 1 << 30}}
	for _, d := range drivers {
		b.Run(d.name, func(b *testing.B) {
			for _, s := range sizes {
				b.Run(s.name, func(b *testing.B) {
					testenv.RequiresRoot(b)
					storagetest.BenchClone(b, d.open(b, s.size), s.size)
				})
			}
		})
	}
}
