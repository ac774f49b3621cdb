package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// HostUser is a host user a test made.
type HostUser struct {
	Name     string
	UID, GID int
}

// Env is the environment sudo gives a command it runs for u.
func (u HostUser) Env() []string {
	return []string{"SUDO_UID=" + strconv.Itoa(u.UID), "SUDO_GID=" + strconv.Itoa(u.GID), "SUDO_USER=" + u.Name}
}

// MakeHostUser creates a host user and their group with the same free id
// (never 0, never 1000, the usual first user's: a test must not pass
// because the developer running it is uid 1000), shell /bin/sh, no home on
// the host; both are removed when the test ends. Needs root and shadow's
// useradd.
func MakeHostUser(t testing.TB) HostUser {
	t.Helper()
	RequiresRoot(t)
	RequiresTool(t, "useradd", "userdel", "groupadd", "groupdel", "getent")
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	name := "stintdev" + hex.EncodeToString(rnd[:])
	for id := 4200 + int(rnd[0])*3; id < 60000; id++ {
		if id == 1000 || idTaken(id) {
			continue
		}
		if out, err := exec.Command("groupadd", "-g", strconv.Itoa(id), name).CombinedOutput(); err != nil {
			t.Logf("groupadd %d: %v: %s", id, err, out)
			continue
		}
		out, err := exec.Command("useradd", "-M", "-N", "-u", strconv.Itoa(id), "-g", strconv.Itoa(id),
			"-s", "/bin/sh", "-d", "/home/"+name, name).CombinedOutput()
		if err != nil {
			_ = exec.Command("groupdel", name).Run()
			t.Logf("useradd %d: %v: %s", id, err, out)
			continue
		}
		t.Cleanup(func() {
			unreserve(t, id)
			if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
				t.Errorf("userdel %s: %v: %s", name, err, out)
			}
			if out, err := exec.Command("groupdel", name).CombinedOutput(); err != nil && idTaken(id) {
				t.Errorf("groupdel %s: %v: %s", name, err, out)
			}
		})
		return HostUser{Name: name, UID: id, GID: id}
	}
	t.Fatal("no free id for a test user")
	return HostUser{}
}

// unreserve removes the "root:ID:1" lines that stint (idmap.Reserve) added
// to /etc/subuid and /etc/subgid for a test user, and nothing else.
func unreserve(t testing.TB, id int) {
	line := "root:" + strconv.Itoa(id) + ":1"
	for _, file := range []string{"/etc/subuid", "/etc/subgid"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		lines := strings.SplitAfter(string(b), "\n")
		kept := slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return strings.TrimSpace(l) == line })
		if len(kept) == len(lines) {
			continue
		}
		if err := os.WriteFile(file, []byte(strings.Join(kept, "")), 0o644); err != nil {
			t.Errorf("unreserve %s in %s: %v", line, file, err)
		}
	}
}

// idTaken reports whether id is a uid or gid of this host.
func idTaken(id int) bool {
	for _, db := range []string{"passwd", "group"} {
		if exec.Command("getent", db, strconv.Itoa(id)).Run() == nil {
			return true
		}
	}
	return false
}
