package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lock opens name's lock file (creating it if create) and takes a
// non-blocking exclusive flock on it. It returns ErrBusy if another open file
// description holds it, and an error wrapping os.ErrNotExist if !create and
// the file is missing.
func (s *Store) lock(name string, create bool) (*os.File, error) {
	path := s.lockPath(name)
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	for {
		f, err := os.OpenFile(path, flags, 0o600)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, ErrBusy
			}
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		// Delete unlinks the lock file while holding it. If that happened
		// between our open and our flock, we hold a lock on a dead inode
		// while a newcomer may lock a fresh file at the same path: retry.
		var held, now unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &held); err != nil {
			f.Close()
			return nil, fmt.Errorf("stat %s: %w", path, err)
		}
		err = unix.Stat(path, &now)
		if err == nil && now.Dev == held.Dev && now.Ino == held.Ino {
			return f, nil
		}
		f.Close()
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("stat %s: %w", path, err)
		}
		if err != nil && !create {
			return nil, fmt.Errorf("lock %s: %w", path, os.ErrNotExist)
		}
	}
}

// unlock releases a lock lock took, then closes its file. Closing alone
// would leave the lock held by every copy of the descriptor: a process
// this one forked keeps one until it execs (os/exec, liblxc), and the
// record would look held by a live process to the next Claim meanwhile.
// LOCK_UN releases it on the open file description, copies included.
func unlock(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_UN)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// write replaces r's record file through a temp file and a rename. Only the
// lock holder writes, so the temp name can be fixed (and Sweep can find it).
// durable adds fsync of the file before the rename and of the directory after
// it; why that is not always needed is in the package doc.
//
// google/renameio does the same rename dance but always fsyncs the file,
// which is exactly the cost the rename-only updates avoid.
func (s *Store) write(r Record, durable bool) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	b = append(b, '\n')
	tmp := s.tempPath(r.Name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && durable {
		s.syncs.Add(1)
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.recordPath(r.Name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", s.recordPath(r.Name), err)
	}
	s.writes.Add(1)
	if durable {
		return s.syncDir()
	}
	return nil
}

// syncDir fsyncs the state directory, making renames and new entries durable.
func (s *Store) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("sync state directory: %w", err)
	}
	defer d.Close()
	s.syncs.Add(1)
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync state directory %s: %w", s.dir, err)
	}
	return nil
}
