package images

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"
	"github.com/stintdev/stint/internal/sysexec"
	"golang.org/x/sys/unix"
)

// busyboxBuilderVersion changes whenever the busybox image layout changes,
// so that a new stint rebuilds instead of reusing an old image.
const busyboxBuilderVersion = "1"

// buildEpoch is the fixed time of built images (file mtimes and
// creation_date) so that a build is reproducible.
var buildEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// BusyboxOptions configure BuildBusybox.
type BusyboxOptions struct {
	Binary     string            // the static busybox; default /bin/busybox
	Aliases    []string          // added to the image
	Properties map[string]string // on top of os, release, description
	Progress   func(done, total int64)
}

// BuildBusybox builds a small system image from the host's static busybox:
// /bin/busybox and its applet links, /etc/passwd, group, hosts, an
// /etc/hostname template, and busybox init (/sbin/init, /etc/inittab) with
// the console on /dev/console. The tarball is deterministic: the same
// busybox binary and options give the same fingerprint. A build whose
// inputs are already in the store (property stint.build) returns that image.
func BuildBusybox(ctx context.Context, s *Store, opts BusyboxOptions) (*Image, error) {
	if opts.Binary == "" {
		opts.Binary = "/bin/busybox"
	}
	sum, err := s.binarySum(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("build busybox image: %w", err)
	}
	key, err := buildKey("busybox", busyboxBuilderVersion, sum, opts.Properties)
	if err != nil {
		return nil, err
	}
	img, unlock, err := s.cachedOrLock(ctx, key, opts.Aliases)
	if img != nil || err != nil {
		return img, err
	}
	defer unlock()
	bin, err := os.ReadFile(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("build busybox image: %w", err)
	}
	if got := sha256.Sum256(bin); hex.EncodeToString(got[:]) != sum {
		// Replaced since it was hashed: the key would name other content.
		return nil, fmt.Errorf("build busybox image: %s: %w", opts.Binary, ErrChangedMeanwhile)
	}
	out, err := sysexec.Run(ctx, opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("build busybox image: %w", err)
	}
	release := "unknown"
	if m := regexp.MustCompile(`BusyBox v([0-9][^ ]*)`).FindSubmatch(out); m != nil {
		release = string(m[1])
	}
	list, err := sysexec.Run(ctx, opts.Binary, "--list-full")
	if err != nil {
		return nil, fmt.Errorf("build busybox image: %w", err)
	}
	props := map[string]string{
		"os":           "busybox",
		"release":      release,
		"description":  "BusyBox " + release + " (built by stint)",
		"architecture": HostArch(),
		BuildProperty:  key,
	}
	for k, v := range opts.Properties {
		props[k] = v
	}
	meta := &Metadata{
		Architecture: HostArch(),
		CreationDate: buildEpoch.Unix(),
		Properties:   props,
		Templates: map[string]Template{
			"/etc/hostname": {When: []string{"create", "copy"}, Template: "hostname.tpl"},
		},
	}
	tmp, err := os.CreateTemp(s.dir, ".tmp-build-")
	if err != nil {
		return nil, fmt.Errorf("build busybox image: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	u := newUnifiedWriter(tmp, buildEpoch)
	if err := u.writeMeta(meta, map[string][]byte{"hostname.tpl": []byte("{{ container.name }}\n")}); err != nil {
		return nil, fmt.Errorf("build busybox image: %w", err)
	}
	for _, e := range busyboxTree(bin, strings.Fields(string(list))) {
		e.ModTime = buildEpoch
		e.Format = tar.FormatPAX
		if err := u.tw.WriteHeader(e.Header); err != nil {
			return nil, fmt.Errorf("build busybox image: %w", err)
		}
		if e.data != nil {
			if _, err := u.tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("build busybox image: %w", err)
			}
		}
	}
	if err := u.Close(); err != nil {
		return nil, fmt.Errorf("build busybox image: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("build busybox image: %w", err)
	}
	return s.Import(ctx, []string{tmp.Name()}, ImportOptions{Aliases: opts.Aliases, Progress: opts.Progress})
}

type tarEntry struct {
	*tar.Header
	data []byte
}

const inittab = `# stint busybox image: boots under LXC with the console on /dev/console.
::sysinit:/etc/init.d/rcS
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
`

const rcS = `#!/bin/sh
# stint busybox image: minimal boot.
/bin/mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run 2>/dev/null
/bin/hostname -F /etc/hostname 2>/dev/null
/sbin/ip link set lo up 2>/dev/null
exit 0
`

// busyboxTree is the image's rootfs, sorted by name.
func busyboxTree(bin []byte, applets []string) []tarEntry {
	files := map[string]tarEntry{}
	dir := func(name string, mode int64) {
		files[name] = tarEntry{Header: &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode}}
	}
	file := func(name string, mode int64, data string) {
		files[name] = tarEntry{Header: &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}, data: []byte(data)}
	}
	for _, d := range []string{"bin", "dev", "etc", "etc/init.d", "home", "lib", "mnt", "proc", "run", "sbin", "sys", "usr", "usr/bin", "usr/sbin", "var", "var/log", "var/tmp"} {
		dir("rootfs/"+d, 0o755)
	}
	dir("rootfs", 0o755)
	dir("rootfs/root", 0o700)
	dir("rootfs/tmp", 0o1777)
	files["rootfs/bin/busybox"] = tarEntry{Header: &tar.Header{Typeflag: tar.TypeReg, Name: "rootfs/bin/busybox", Mode: 0o755, Size: int64(len(bin))}, data: bin}
	applets = append(applets, "sbin/init", "bin/sh")
	for _, a := range applets {
		a = path.Clean(strings.TrimPrefix(a, "/"))
		if a == "bin/busybox" || strings.HasPrefix(a, "..") {
			continue
		}
		for d := path.Dir(a); d != "."; d = path.Dir(d) {
			if _, ok := files["rootfs/"+d]; !ok {
				dir("rootfs/"+d, 0o755)
			}
		}
		files["rootfs/"+a] = tarEntry{Header: &tar.Header{Typeflag: tar.TypeSymlink, Name: "rootfs/" + a, Linkname: "/bin/busybox", Mode: 0o777}}
	}
	file("rootfs/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
	file("rootfs/etc/group", 0o644, "root:x:0:\nnogroup:x:65534:\n")
	file("rootfs/etc/shadow", 0o600, "root:*:0:0:99999:7:::\nnobody:*:0:0:99999:7:::\n")
	file("rootfs/etc/hosts", 0o644, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	file("rootfs/etc/hostname", 0o644, "busybox\n")
	file("rootfs/etc/inittab", 0o644, inittab)
	file("rootfs/etc/init.d/rcS", 0o755, rcS)
	file("rootfs/etc/profile", 0o644, "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]tarEntry, 0, len(names))
	for _, n := range names {
		out = append(out, files[n])
	}
	return out
}

// buildKey hashes a builder's inputs for the stint.build property.
func buildKey(parts ...any) (string, error) {
	data, err := json.Marshal(parts)
	if err != nil {
		return "", fmt.Errorf("hash build inputs: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// buildLock serialises builds of the same inputs across stint processes:
// the second waits for the first and then finds its image in the cache.
func (s *Store) buildLock(ctx context.Context, key string) (unlock func(), err error) {
	l := flock.New(filepath.Join(s.dir, ".build-"+key[:16]+".lock"))
	if _, err := l.TryLockContext(ctx, 200*time.Millisecond); err != nil {
		return nil, fmt.Errorf("lock build %s: %w", key[:16], err)
	}
	return func() { l.Unlock() }, nil
}

// cachedOrLock returns the cached image for key, or, on a miss, holds the
// build lock for key (release it with unlock) after checking again under it.
func (s *Store) cachedOrLock(ctx context.Context, key string, aliases []string) (img *Image, unlock func(), err error) {
	if img, err := s.cached(key, aliases); img != nil || err != nil {
		return img, nil, err
	}
	unlock, err = s.buildLock(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	if img, err := s.cached(key, aliases); img != nil || err != nil {
		unlock()
		return img, nil, err
	}
	return nil, unlock, nil
}

// cached returns the image built from key, with aliases added, or nil.
func (s *Store) cached(key string, aliases []string) (*Image, error) {
	imgs, err := s.FindProperty(BuildProperty, key)
	if err != nil || len(imgs) == 0 {
		return nil, err
	}
	img := imgs[0]
	for _, a := range aliases {
		if err := s.AddAlias(img.Fingerprint, a); err != nil {
			return nil, err
		}
	}
	return s.Resolve(img.Fingerprint)
}

// ErrChangedMeanwhile: a builder's input file changed while it was read.
var ErrChangedMeanwhile = errors.New("file changed while it was read")

// sumFile remembers the SHA-256 of the busybox binary by the file's
// identity, so that resolving a busybox image (every job's first step)
// doesn't read and hash 2 MB each time.
const sumFile = ".busybox-sum.json"

// fileID is what identifies a file's content without reading it: any write
// changes mtime and ctime, a replacement changes the inode (or, reusing it,
// the ctime, which no caller can set back).
type fileID struct {
	Path  string `json:"path"`
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime_ns"`
	Ctime int64  `json:"ctime_ns"`
}

// sumEntry is sumFile's content.
type sumEntry struct {
	fileID
	SHA256 string `json:"sha256"`
}

func idOf(path string, st *unix.Stat_t) fileID {
	return fileID{Path: path, Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		Mtime: unix.TimespecToNsec(st.Mtim), Ctime: unix.TimespecToNsec(st.Ctim)}
}

// binarySum returns the hex SHA-256 of the file at path: the one recorded
// in sumFile when the file's identity is unchanged, else read and hashed
// (and recorded when the file did not change during the read).
func (s *Store) binarySum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var before unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &before); err != nil {
		return "", fmt.Errorf("stat %s: %w", path, err)
	}
	id := idOf(path, &before)
	var e sumEntry
	if b, err := os.ReadFile(filepath.Join(s.dir, sumFile)); err == nil && json.Unmarshal(b, &e) == nil && e.fileID == id && e.SHA256 != "" {
		return e.SHA256, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	var after unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &after); err != nil {
		return "", fmt.Errorf("stat %s: %w", path, err)
	}
	if idOf(path, &after) != id {
		return "", fmt.Errorf("%s: %w", path, ErrChangedMeanwhile)
	}
	// Best effort: without the record, the next build hashes again.
	if b, err := json.Marshal(sumEntry{fileID: id, SHA256: sum}); err == nil {
		_ = renameio.WriteFile(filepath.Join(s.dir, sumFile), b, 0o600)
	}
	return sum, nil
}
