package hostuser

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNoAgent means the user has no SSH agent stint can find: not an error
// for `ssh_agent = true`, a warning.
var ErrNoAgent = errors.New("no SSH agent")

// Agent is the user's SSH agent socket, checked and held open by an O_PATH
// descriptor: connect through ConnectPath, which names that very inode, so
// the path can't be swapped for someone else's socket after the check.
type Agent struct {
	Path string   // where the user's environment says it is
	File *os.File // O_PATH descriptor of the checked socket
}

// ConnectPath is a path that connect(2) resolves to the checked socket.
func (a *Agent) ConnectPath() string { return fmt.Sprintf("/proc/self/fd/%d", a.File.Fd()) }

// Close releases the descriptor.
func (a *Agent) Close() error { return a.File.Close() }

// FindAgent finds u's SSH agent: $SSH_AUTH_SOCK (kept by `sudo
// --preserve-env=SSH_AUTH_SOCK`, or stint run without sudo), otherwise the
// SSH_AUTH_SOCK of the nearest ancestor process whose real uid is u's (the
// shell that ran sudo: sudo's env_reset drops the variable). It must be a
// socket owned by u: stint, as root, never hands anyone else's agent over.
// ErrNoAgent when there is none.
func FindAgent(o Options, u User) (*Agent, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	path := getenv("SSH_AUTH_SOCK")
	if path == "" {
		path = ancestorAgent(o.proc(), u.UID)
	}
	if path == "" {
		return nil, fmt.Errorf("ssh agent of %s: %w (SSH_AUTH_SOCK unset, also in the processes that ran stint)", u.Name, ErrNoAgent)
	}
	return OpenAgent(path, u)
}

// OpenAgent checks that path is a socket owned by u and opens it O_PATH.
func OpenAgent(path string, u User) (*Agent, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("ssh agent of %s: %q is not an absolute path: %w", u.Name, path, ErrNoAgent)
	}
	fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("ssh agent of %s: %s: %w (%w)", u.Name, path, ErrNoAgent, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ssh agent of %s: %s: %w", u.Name, path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Uid != u.UID {
		unix.Close(fd)
		return nil, fmt.Errorf("ssh agent of %s: %s is not a socket of uid %d (mode %#o, uid %d): %w",
			u.Name, path, u.UID, st.Mode&unix.S_IFMT, st.Uid, ErrNoAgent)
	}
	return &Agent{Path: path, File: os.NewFile(uintptr(fd), path)}, nil
}

func (o Options) proc() string {
	if o.Proc == "" {
		return "/proc"
	}
	return o.Proc
}

// ancestorAgent walks up from this process to PID 1 and returns the
// SSH_AUTH_SOCK of the first process whose real uid is uid, or "".
func ancestorAgent(proc string, uid uint32) string {
	pid := "self"
	for range 64 { // a process tree is not deeper than this in practice
		ppid, err := parentOf(proc, pid)
		if err != nil || ppid <= 1 {
			return ""
		}
		pid = strconv.Itoa(ppid)
		if realUID(proc, pid) != int64(uid) {
			continue
		}
		env, err := os.ReadFile(filepath.Join(proc, pid, "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("SSH_AUTH_SOCK=")); ok && len(v) > 0 {
				return string(v)
			}
		}
	}
	return ""
}

// parentOf reads the parent pid from /proc/PID/stat (after the command
// name, which may hold spaces and parentheses).
func parentOf(proc, pid string) (int, error) {
	b, err := os.ReadFile(filepath.Join(proc, pid, "stat"))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s/%s/stat: malformed", proc, pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("%s/%s/stat: malformed", proc, pid)
	}
	return strconv.Atoi(f[1])
}

// realUID reads the real uid from /proc/PID/status; -1 if unknown.
func realUID(proc, pid string) int64 {
	b, err := os.ReadFile(filepath.Join(proc, pid, "status"))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Uid:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return n
				}
			}
		}
	}
	return -1
}
