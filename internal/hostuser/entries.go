package hostuser

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// ErrClash means the image already has a user or group that conflicts
// with the host user: the same name with another id, or the same uid with
// another name. stint never renames or renumbers an image's users.
var ErrClash = errors.New("clashes with the image")

// ClashError says which entry of which file clashes. It wraps ErrClash.
type ClashError struct {
	File string // the container path: /etc/passwd, /etc/group
	What string // what the image has, against what the host has
}

func (e *ClashError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.File, e.What, ErrClash)
}

// Unwrap returns ErrClash.
func (e *ClashError) Unwrap() error { return ErrClash }

// The edits below are pure: file contents in, contents out, changed when
// out differs. Lines they don't own (comments, other users, malformed
// lines) are kept byte for byte.

// editPasswd gives u an entry in a passwd file: appended when missing,
// its gid, home and shell brought to the host's when it exists with u's
// name and uid.
func editPasswd(b []byte, u User) ([]byte, bool, error) {
	lines := splitLines(b)
	want := []string{u.Name, "x", id(u.UID), id(u.GID), "", u.Home, u.Shell}
	found := false
	for i, l := range lines {
		f := bytes.Split(l, []byte(":"))
		if len(f) < 7 {
			continue
		}
		name, uid := string(f[0]), string(f[2])
		switch {
		case name == u.Name && uid != id(u.UID):
			return nil, false, &ClashError{"/etc/passwd", fmt.Sprintf("user %q is uid %s in the image, the host's %s is uid %d", name, uid, u.Name, u.UID)}
		case name != u.Name && uid == id(u.UID):
			return nil, false, &ClashError{"/etc/passwd", fmt.Sprintf("uid %d is %q in the image, the host user is %q (remove or renumber %s in the image)", u.UID, name, u.Name, name)}
		case name == u.Name && !found:
			found = true
			g := make([]string, len(f))
			for j := range f {
				g[j] = string(f[j])
			}
			g[3], g[5], g[6] = want[3], want[5], want[6]
			lines[i] = join(g)
		}
	}
	if !found {
		lines = append(lines, join(want))
	}
	return joinLines(b, lines)
}

// editGroup gives u's primary group an entry in a group file unless its
// gid is there already (under any name: groups may be shared).
func editGroup(b []byte, u User) ([]byte, bool, error) {
	lines := splitLines(b)
	haveGID := false
	for _, l := range lines {
		f := bytes.Split(l, []byte(":"))
		if len(f) < 4 {
			continue
		}
		name, gid := string(f[0]), string(f[2])
		if name == u.Group && gid != id(u.GID) {
			return nil, false, &ClashError{"/etc/group", fmt.Sprintf("group %q is gid %s in the image, the host's %s is gid %d", name, gid, u.Group, u.GID)}
		}
		haveGID = haveGID || gid == id(u.GID)
	}
	if !haveGID {
		lines = append(lines, join([]string{u.Group, "x", id(u.GID), ""}))
	}
	return joinLines(b, lines)
}

// editShadow gives name a locked entry ("!": no password logs in) in a
// shadow or gshadow file of fields fields, unless it has one.
func editShadow(b []byte, name string, fields int) ([]byte, bool, error) {
	lines := splitLines(b)
	for _, l := range lines {
		if f := bytes.SplitN(l, []byte(":"), 2); len(f) == 2 && string(f[0]) == name {
			return b, false, nil
		}
	}
	e := make([]string, fields)
	e[0], e[1] = name, "!"
	return joinLines(b, append(lines, join(e)))
}

func id(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func join(f []string) []byte {
	var buf bytes.Buffer
	for i, s := range f {
		if i > 0 {
			buf.WriteByte(':')
		}
		buf.WriteString(s)
	}
	return buf.Bytes()
}

// splitLines splits b into lines without their newlines (a last line
// without one counts).
func splitLines(b []byte) [][]byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

// joinLines rejoins lines, each ending in a newline, and says whether that
// differs from b.
func joinLines(b []byte, lines [][]byte) ([]byte, bool, error) {
	var out []byte
	for _, l := range lines {
		out = append(append(out, l...), '\n')
	}
	return out, !bytes.Equal(out, b), nil
}
