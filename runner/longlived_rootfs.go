package runner

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// rootfsLost lists the top-level entries of a long-lived container's image
// (its golden volume) that the container's root filesystem (volume id)
// lost, when it lost most of them: emptied outside stint. `lxc-destroy -f`
// by hand does that: it stops the container and empties its root, then
// fails to remove the mount point, leaving a definition that starts a PID 1
// with nothing to run. Such a container is as good as missing: the plan
// recreates it. A root that lost a few entries (its owner's doing) is left
// alone; nil when whole, or when it can't tell.
func (b *LongLived) rootfsLost(ctx context.Context, id string) []string {
	drv := b.Runner.Storage
	if drv == nil {
		return nil
	}
	vol, err := drv.Get(ctx, id)
	if err != nil || vol.Parent == "" {
		return nil
	}
	golden, err := drv.Get(ctx, vol.Parent)
	if err != nil {
		return nil
	}
	ents, err := os.ReadDir(golden.Rootfs)
	if err != nil {
		return nil
	}
	var lost []string
	kept := 0
	for _, e := range ents {
		switch e.Name() {
		case "dev", "proc", "sys", ".stint": // made again at every start
			continue
		}
		if _, err := os.Lstat(filepath.Join(vol.Rootfs, e.Name())); errors.Is(err, fs.ErrNotExist) {
			lost = append(lost, "/"+e.Name())
		} else {
			kept++
		}
	}
	if len(lost) <= kept {
		return nil
	}
	return lost
}
