package runner

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/internal/rootfs"
)

// Neutral /etc/hostname and /etc/hosts, as debootstrap leaves them for a
// system that names itself at boot (a container: LXC sets its hostname).
const (
	neutralHostname = "localhost\n"
	neutralHosts    = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
)

// neutralHost resets /etc/hostname and /etc/hosts of a recipe's build when
// they name the build container (its name is stint-image-...: written by
// the image's templates, LXC or a package's scripts), so that containers of
// the image don't call themselves that. A file the recipe's `files` set,
// or a hook wrote without that name, is the recipe's and stays; so does a
// link (never followed).
func (b *recipeBuild) neutralHost() error {
	for _, f := range []struct{ path, content string }{{"/etc/hostname", neutralHostname}, {"/etc/hosts", neutralHosts}} {
		if slices.ContainsFunc(b.rec.Files, func(rf images.RecipeFile) bool { return rf.Target == f.path }) {
			continue
		}
		have, err := b.read(f.path)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) {
			continue // missing, or a link: not a file that names the build
		}
		if err != nil {
			return fmt.Errorf("image %s: %s: %w", b.rec.Name, f.path, err)
		}
		if !bytes.Contains(have, []byte(b.name)) {
			continue
		}
		if err := b.put(f.path, []byte(f.content), 0o644); err != nil {
			return fmt.Errorf("image %s: reset %s: %w", b.rec.Name, f.path, err)
		}
	}
	return nil
}

// read reads container path p of the build's clone, resolved inside it.
func (b *recipeBuild) read(p string) ([]byte, error) {
	root, err := rootfs.OpenRoot(b.rootfs)
	if err != nil {
		return nil, err
	}
	defer unix.Close(root)
	fd, err := rootfs.OpenIn(root, p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}
