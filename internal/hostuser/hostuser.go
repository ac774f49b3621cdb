// Package hostuser finds the developer who runs stint on this host and gives
// a container's root filesystem a user just like them (`host_user = true`).
//
// Who: under sudo, the user sudo names (SUDO_UID, SUDO_GID, SUDO_USER, each
// checked); otherwise the owner of the spec directory (stint runs as root,
// and the checkout belongs to the developer). Their name, primary group,
// shell and home come from the host's /etc/passwd and /etc/group.
//
// Where: AddTo writes that user and group into the container's /etc/passwd,
// /etc/group, and /etc/shadow and /etc/gshadow when the image has them,
// with a locked password. Every path is resolved inside the container's
// root (internal/rootfs: openat2 RESOLVE_IN_ROOT), files are replaced by a
// rename within the already-open /etc, and a file that is a symlink is
// refused: nothing outside the root is read or written through a link.
package hostuser

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/stintdev/stint/internal/lazyre"
)

// User is a host user, as the container will know them.
type User struct {
	Name  string `json:"name"`
	UID   uint32 `json:"uid"`
	GID   uint32 `json:"gid"`
	Group string `json:"group"` // the primary group's name
	Shell string `json:"shell"`
	Home  string `json:"home"`
}

// Options say where Invoking looks. The zero value is the real host.
type Options struct {
	// Getenv reads the environment (os.Getenv when nil).
	Getenv func(string) string
	// SpecDir is the directory of the spec set; its owner is the user
	// when stint does not run under sudo.
	SpecDir string
	// Passwd and Group are the host's files (/etc/passwd, /etc/group when
	// empty). With the defaults, a user missing from /etc/passwd is looked
	// up through NSS (LDAP, sssd) too.
	Passwd, Group string
	// Proc is where FindAgent reads processes ("/proc" when empty).
	Proc string
}

// Sentinel errors, checked with errors.Is.
var (
	// ErrRoot: the only candidate is root, and root is never mapped.
	ErrRoot = errors.New("the invoking user is root")
	// ErrSudoEnv: SUDO_UID, SUDO_GID or SUDO_USER is malformed or
	// inconsistent with the host's user database.
	ErrSudoEnv = errors.New("bad sudo environment")
	// ErrUnknown: the uid is not a user of this host.
	ErrUnknown = errors.New("no such user on the host")
)

// Invoking returns the developer on whose behalf stint runs.
func Invoking(o Options) (User, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if s := getenv("SUDO_UID"); s != "" {
		u, err := fromSudo(o, s, getenv("SUDO_GID"), getenv("SUDO_USER"))
		if !errors.Is(err, ErrRoot) {
			return u, err
		}
		// root ran sudo: nobody to map by sudo's word; ask the spec
		// directory.
	}
	if o.SpecDir == "" {
		return User{}, fmt.Errorf("host user: not run under sudo and no spec directory: %w", ErrRoot)
	}
	fi, err := os.Stat(o.SpecDir)
	if err != nil {
		return User{}, fmt.Errorf("host user: owner of %s: %w", o.SpecDir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return User{}, fmt.Errorf("host user: owner of %s: no owner", o.SpecDir)
	}
	if st.Uid == 0 {
		return User{}, fmt.Errorf("host user: %s belongs to root and stint does not run under sudo: %w; run it with sudo from your own account, or own the spec directory", o.SpecDir, ErrRoot)
	}
	u, err := lookupUID(o, st.Uid)
	if err != nil {
		return User{}, fmt.Errorf("host user: owner of %s: %w", o.SpecDir, err)
	}
	return u, nil
}

// fromSudo checks what sudo says and completes it from the host's files.
func fromSudo(o Options, uidS, gidS, name string) (User, error) {
	uid, err := parseID(uidS)
	if err != nil {
		return User{}, fmt.Errorf("host user: SUDO_UID %q: %w: %v", uidS, ErrSudoEnv, err)
	}
	if uid == 0 {
		return User{}, fmt.Errorf("host user: SUDO_UID is 0: %w", ErrRoot)
	}
	gid, err := parseID(gidS)
	if err != nil {
		return User{}, fmt.Errorf("host user: SUDO_GID %q: %w: %v", gidS, ErrSudoEnv, err)
	}
	if gid == 0 {
		return User{}, fmt.Errorf("host user: SUDO_GID is 0: %w: root's group is never mapped", ErrSudoEnv)
	}
	u, err := lookupUID(o, uid)
	if err != nil {
		return User{}, fmt.Errorf("host user: SUDO_UID %d: %w", uid, err)
	}
	if name != "" && name != u.Name {
		return User{}, fmt.Errorf("host user: SUDO_USER %q but uid %d is %q: %w", name, uid, u.Name, ErrSudoEnv)
	}
	if gid != u.GID {
		// sudo's SUDO_GID is the caller's real gid, which `sg` or
		// `newgrp` may have changed: theirs to choose.
		u.GID = gid
		u.Group, err = groupName(o, gid)
		if err != nil {
			return User{}, err
		}
		if u.Group == "" {
			u.Group = u.Name
		}
	}
	return u, nil
}

// parseID accepts a plain decimal id, nothing else (no sign, no spaces, no
// 4294967295).
func parseID(s string) (uint32, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" || len(s) > 10 {
		return 0, errors.New("not a decimal id")
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, errors.New("out of range")
	}
	return uint32(n), nil
}

var nameRE = lazyre.New(`^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$`)

// validUser checks that u can be written into passwd and group files as it
// is: a name useradd would take, and no field separator or newline
// anywhere.
func validUser(u User) error {
	switch {
	case len(u.Name) > 32 || !nameRE.MatchString(u.Name) || strings.TrimLeft(u.Name, "0123456789") == "":
		return fmt.Errorf("user name %q: not a portable user name", u.Name)
	case len(u.Group) > 32 || !nameRE.MatchString(u.Group) || strings.TrimLeft(u.Group, "0123456789") == "":
		return fmt.Errorf("group name %q: not a portable group name", u.Group)
	case u.UID == 0 || u.GID == 0:
		return fmt.Errorf("user %s: %w", u.Name, ErrRoot)
	case strings.ContainsAny(u.Home+u.Shell, ":\n\r\x00") || !strings.HasPrefix(u.Home, "/") || !strings.HasPrefix(u.Shell, "/"):
		return fmt.Errorf("user %s: home %q and shell %q must be absolute paths without ':' or newlines", u.Name, u.Home, u.Shell)
	}
	return nil
}

// lookupUID finds uid in the host's passwd (then NSS, for the real host),
// and its primary group's name.
func lookupUID(o Options, uid uint32) (User, error) {
	file := o.Passwd
	if file == "" {
		file = "/etc/passwd"
	}
	var u User
	found := false
	err := eachEntry(file, 7, func(f []string) bool {
		id, err := parseID(f[2])
		if err != nil || id != uid {
			return true
		}
		gid, err := parseID(f[3])
		if err != nil {
			return true
		}
		u, found = User{Name: f[0], UID: uid, GID: gid, Home: f[5], Shell: f[6]}, true
		return false
	})
	if err != nil {
		return User{}, err
	}
	if !found && o.Passwd == "" {
		u, found = lookupNSS(uid)
	}
	if !found {
		return User{}, fmt.Errorf("uid %d: %w (%s)", uid, ErrUnknown, file)
	}
	if u.Shell == "" {
		u.Shell = "/bin/sh"
	}
	if u.Home == "" {
		u.Home = "/home/" + u.Name
	}
	if u.Group, err = groupName(o, u.GID); err != nil {
		return User{}, err
	}
	if u.Group == "" {
		u.Group = u.Name // a gid without a name: the user's private group
	}
	if err := validUser(u); err != nil {
		return User{}, fmt.Errorf("uid %d: %w", uid, err)
	}
	return u, nil
}

// lookupNSS asks the C library (LDAP, sssd users are not in /etc/passwd).
// It knows no shell: /bin/sh.
func lookupNSS(uid uint32) (User, bool) {
	pu, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return User{}, false
	}
	gid, err := parseID(pu.Gid)
	if err != nil {
		return User{}, false
	}
	return User{Name: pu.Username, UID: uid, GID: gid, Home: pu.HomeDir, Shell: "/bin/sh"}, true
}

// groupName names gid from the host's group file (then NSS, for the real
// host); "" when it has no name.
func groupName(o Options, gid uint32) (string, error) {
	file := o.Group
	if file == "" {
		file = "/etc/group"
	}
	name := ""
	err := eachEntry(file, 4, func(f []string) bool {
		if id, err := parseID(f[2]); err == nil && id == gid {
			name = f[0]
			return false
		}
		return true
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if name == "" && o.Group == "" {
		if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
			name = g.Name
		}
	}
	return name, nil
}

// eachEntry calls fn with the fields of every line of file that has at
// least n fields, until fn returns false.
func eachEntry(file string, n int, fn func([]string) bool) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= n && !fn(fields) {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	return nil
}
