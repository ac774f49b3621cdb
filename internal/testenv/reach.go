package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Reachable lets containers' mapped root (an unprivileged host uid) search
// its way to dir, a directory the test made under os.TempDir (t.TempDir or
// below it): it adds o+x to dir and each of its ancestors below os.TempDir,
// and nothing else. It never sets a mode wholesale, never removes a bit, and
// never touches os.TempDir or anything above it, which the test didn't make
// (a chmod there once left the host's /tmp at 0755).
func Reachable(t testing.TB, dir string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	dir = filepath.Clean(dir)
	rel, err := filepath.Rel(tmp, dir)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		t.Fatalf("testenv.Reachable: %s is not below the temporary directory %s", dir, tmp)
	}
	for d := dir; d != tmp; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatalf("testenv.Reachable: %v", err)
		}
		if m := fi.Mode().Perm(); m&0o001 == 0 {
			if err := os.Chmod(d, m|0o001); err != nil {
				t.Fatalf("testenv.Reachable: %v", err)
			}
		}
	}
	// Above the temporary directory nothing is ours to change: say so
	// instead of failing inside LXC later.
	for d := tmp; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatalf("testenv.Reachable: %v", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			Unavailable(t, "containers' mapped root can't search "+d+" (no o+x); the test won't change it")
		}
		if d == filepath.Dir(d) {
			break
		}
	}
}
