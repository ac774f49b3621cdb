package freezer

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoFreezer means the host mounts neither a v1 freezer hierarchy nor
// cgroup v2.
var ErrNoFreezer = errors.New("no cgroup freezer mounted")

// CgroupDir returns the directory of process pid's cgroup that freezes it,
// as seen from this process: its cgroup in the v1 freezer hierarchy when
// one is mounted (a pure v1 or a hybrid host), else its cgroup v2.
func CgroupDir(pid int) (string, error) {
	mounts, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("find the freezer of pid %d: %w", pid, err)
	}
	defer mounts.Close()
	cg, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", fmt.Errorf("find the freezer of pid %d: %w", pid, err)
	}
	defer cg.Close()
	v1Mount, v1Root, v2Mount, v2Root := parseMountinfo(bufio.NewScanner(mounts))
	v1Path, v2Path, hasV2 := parseCgroup(bufio.NewScanner(cg))
	switch {
	case v1Mount != "" && v1Path != "":
		return join(v1Mount, v1Root, v1Path)
	case v2Mount != "" && hasV2:
		return join(v2Mount, v2Root, v2Path)
	default:
		return "", fmt.Errorf("find the freezer of pid %d: %w", pid, ErrNoFreezer)
	}
}

// join maps a cgroup path (relative to the hierarchy's root) to a directory
// under a mount of the hierarchy whose own root is mountRoot.
func join(mountpoint, mountRoot, path string) (string, error) {
	rel, err := filepath.Rel(mountRoot, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("cgroup %s is outside the mount of %s at %s", path, mountRoot, mountpoint)
	}
	return filepath.Join(mountpoint, rel), nil
}

// parseMountinfo finds the v1 freezer hierarchy's and cgroup2's mount
// points and roots in /proc/self/mountinfo (first of each).
func parseMountinfo(sc *bufio.Scanner) (v1Mount, v1Root, v2Mount, v2Root string) {
	for sc.Scan() {
		// id parent major:minor root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		root, mountpoint := unescape(f[3]), unescape(f[4])
		switch {
		case g[0] == "cgroup" && v1Mount == "" && hasOpt(g[2], "freezer"):
			v1Mount, v1Root = mountpoint, root
		case g[0] == "cgroup2" && v2Mount == "":
			v2Mount, v2Root = mountpoint, root
		}
	}
	return
}

// parseCgroup finds the freezer's (v1) and the unified (v2) path in
// /proc/<pid>/cgroup.
func parseCgroup(sc *bufio.Scanner) (v1Path, v2Path string, hasV2 bool) {
	for sc.Scan() {
		// hierarchy-id:controller-list:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2Path, hasV2 = parts[2], true
			continue
		}
		if hasOpt(parts[1], "freezer") {
			v1Path = parts[2]
		}
	}
	return
}

func hasOpt(list, opt string) bool {
	for _, o := range strings.Split(list, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// unescape undoes mountinfo's octal escapes (\040 for a space, ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
