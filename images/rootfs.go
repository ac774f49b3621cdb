package images

import (
	"context"
	"fmt"
	"os"
	"time"
)

// ImportRootfs packs the directory rootfs, with meta and templates (file
// name → contents, under templates/), as a unified gzip image and imports
// it with opts. Every header outside the rootfs carries meta's creation
// date, and the tree is packed in sorted order, so the same tree and
// metadata give the same fingerprint. Owners, modes, hard links, devices
// and xattrs are packed as they are on disk.
func (s *Store) ImportRootfs(ctx context.Context, rootfs string, meta *Metadata, templates map[string][]byte, opts ImportOptions) (*Image, error) {
	tmp, release, err := s.TempFile(".tmp-pack-")
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", rootfs, err)
	}
	defer release()
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	u := newUnifiedWriter(tmp, time.Unix(meta.CreationDate, 0).UTC())
	err = u.writeMeta(meta, templates)
	if err == nil {
		err = u.packDir(ctx, rootfs)
	}
	if err == nil {
		err = u.Close()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", rootfs, err)
	}
	return s.Import(ctx, []string{tmp.Name()}, opts)
}
