// Package mountinfo reads this process's mount table
// (/proc/self/mountinfo): the mount points, unescaped. No cgo, so that
// images/ and storage/ can share it.
package mountinfo

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Points lists this mount namespace's mount points, unescaped, in the
// table's order.
func Points() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			out = append(out, Unescape(fields[4]))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return out, nil
}

// Beneath lists the mount points at or below dir (a clean absolute path),
// deepest first: the order to unmount them in.
func Beneath(dir string) ([]string, error) {
	mps, err := Points()
	if err != nil {
		return nil, err
	}
	var under []string
	for _, m := range mps {
		if m == dir || strings.HasPrefix(m, dir+"/") {
			under = append(under, m)
		}
	}
	sort.Slice(under, func(i, j int) bool { return len(under[i]) > len(under[j]) })
	return under, nil
}

// Unescape undoes mountinfo's octal escapes (\040 for a space, ...).
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// SameMount reports whether all paths (at least one) are on one mount, by
// statx's mount id: a false answer when the kernel has no mount ids (before
// Linux 5.8) or a path can't be read, so a caller that skips work when the
// answer is true stays on the safe side.
func SameMount(paths ...string) bool {
	var id uint64
	for i, p := range paths {
		var stx unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, p, 0, unix.STATX_MNT_ID, &stx); err != nil || stx.Mask&unix.STATX_MNT_ID == 0 {
			return false
		}
		if i > 0 && stx.Mnt_id != id {
			return false
		}
		id = stx.Mnt_id
	}
	return len(paths) > 0
}
