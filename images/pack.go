package images

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"
)

// unifiedWriter writes an LXD unified tarball (metadata.yaml, templates/,
// rootfs/), gzip-compressed, with every header's time set to mtime so equal
// inputs give equal bytes, hence an equal fingerprint.
type unifiedWriter struct {
	gz    *gzip.Writer
	tw    *tar.Writer
	mtime time.Time
	// owner, when set, rewrites each rootfs entry's owner (and xattrs)
	// before it is written: a shifted rootfs is packed with container ids.
	owner func(hdr *tar.Header) error
}

func newUnifiedWriter(w io.Writer, mtime time.Time) *unifiedWriter {
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	return &unifiedWriter{gz: gz, tw: tar.NewWriter(gz), mtime: mtime}
}

// writeMeta writes metadata.yaml and templates/ (sorted).
func (u *unifiedWriter) writeMeta(m *Metadata, templates map[string][]byte) error {
	data, err := m.Marshal()
	if err != nil {
		return err
	}
	if err := u.file("metadata.yaml", 0o644, data); err != nil {
		return err
	}
	if len(templates) == 0 {
		return nil
	}
	if err := u.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "templates/", Mode: 0o755, ModTime: u.mtime, Format: tar.FormatPAX}); err != nil {
		return err
	}
	names := make([]string, 0, len(templates))
	for n := range templates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := u.file("templates/"+n, 0o644, templates[n]); err != nil {
			return err
		}
	}
	return nil
}

func (u *unifiedWriter) file(name string, mode int64, data []byte) error {
	if err := u.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: u.mtime, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := u.tw.Write(data)
	return err
}

func (u *unifiedWriter) Close() error {
	if err := u.tw.Close(); err != nil {
		return err
	}
	return u.gz.Close()
}

// packDir writes the tree at dir as rootfs/ into u, in sorted order, with
// owners, modes, hard links, device nodes and xattrs as they are on disk.
func (u *unifiedWriter) packDir(ctx context.Context, dir string) error {
	if err := u.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "rootfs/", Mode: 0o755, ModTime: u.mtime, Format: tar.FormatPAX}); err != nil {
		return err
	}
	links := map[[2]uint64]string{} // (dev, ino) → first name, for hard links
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		name := "rootfs/" + filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		var target string
		if fi.Mode()&fs.ModeSymlink != 0 {
			if target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, target)
		if err != nil {
			return fmt.Errorf("pack %s: %w", p, err)
		}
		hdr.Name = name
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Format = tar.FormatPAX
		hdr.Uname, hdr.Gname = "", ""
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.ModTime = hdr.ModTime.Truncate(time.Second)
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			if fi.Mode().IsRegular() && st.Nlink > 1 {
				key := [2]uint64{st.Dev, st.Ino}
				if first, ok := links[key]; ok {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					links[key] = name
				}
			}
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			addXattrs(p, hdr)
		}
		if u.owner != nil {
			if err := u.owner(hdr); err != nil {
				return fmt.Errorf("pack %s: %w", p, err)
			}
		}
		if err := u.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("pack %s: %w", p, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(u.tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("pack %s: %w", p, err)
			}
		}
		return nil
	})
}

// addXattrs records p's extended attributes (file capabilities, ACLs) as
// PAX records, the way GNU tar --xattrs does.
func addXattrs(p string, hdr *tar.Header) {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return
	}
	for _, attr := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		val := make([]byte, 4096)
		m, err := unix.Lgetxattr(p, attr, val)
		if err != nil {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+attr] = string(val[:m])
	}
}
