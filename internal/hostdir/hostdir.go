// Package hostdir makes and checks the host directories stint keeps its
// containers under, without ever changing a directory it did not create.
//
// Unprivileged containers run as a mapped host uid (root's subuid range), and
// that uid must traverse every ancestor of a container's rootfs. stint used to
// chmod --root and the storage pool into shape; with --root under /tmp,
// $HOME or a project that rewrote a mode the user had chosen (and made /tmp
// 0755). Now stint only sets the mode of what it makes, and reports the
// ancestor that blocks the way instead of opening it.
package hostdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// BlockedError says that a directory's ancestor can't be searched by other
// users, so a container's mapped root can't reach the directory.
type BlockedError struct {
	Dir      string      // the directory stint needs to reach
	Ancestor string      // the first path on the way that others can't search
	Mode     fs.FileMode // its permission bits
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("%s: %s is mode %04o, so unprivileged containers' mapped root can't reach it; "+
		"add search permission (chmod o+x %s) or choose a directory whose parents others can search",
		e.Dir, e.Ancestor, e.Mode.Perm(), e.Ancestor)
}

// MkdirAll is os.MkdirAll that sets perm exactly (umask aside) on each
// directory it creates, and leaves every directory that already existed as it
// was.
func MkdirAll(dir string, perm fs.FileMode) error {
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("make directory %s: %w", dir, &fs.PathError{Op: "mkdir", Path: dir, Err: errNotDir})
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("make directory %s: %w", dir, err)
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil {
		if errors.Is(err, fs.ErrExist) { // made by a concurrent process: not ours
			return nil
		}
		return fmt.Errorf("make directory %s: %w", dir, err)
	}
	// Ours: the mode is what the caller asked for, not what the umask left.
	if err := os.Chmod(dir, perm); err != nil {
		return fmt.Errorf("make directory %s: %w", dir, err)
	}
	return nil
}

var errNotDir = errors.New("not a directory")

// CheckReachable returns a *BlockedError naming the first of dir and its
// ancestors that others can't search (no o+x bit), or the error of a path
// that can't be inspected. Components that don't exist yet are not checked:
// MkdirAll makes them with the caller's mode, so check before making and
// nothing is made under a blocked ancestor. Access control lists are not
// consulted: stint asks for the plain bit so that the answer doesn't depend
// on which ids a container maps.
func CheckReachable(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	var chain []string
	for d := dir; ; d = filepath.Dir(d) {
		chain = append(chain, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- { // from / down
		fi, err := os.Stat(chain[i])
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("directory %s: %w", dir, err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return &BlockedError{Dir: dir, Ancestor: chain[i], Mode: fi.Mode().Perm()}
		}
	}
	return nil
}
