package runner

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// User is a resolved container user.
type User struct {
	Name string
	UID  int
	GID  int
	Home string
	// Shell is the login shell /etc/passwd names ("" when unknown).
	Shell string
	// Groups are the supplementary groups /etc/group lists the user in.
	Groups []int
}

// LookupUser resolves name (a user name or a numeric uid; "" is root) in the
// container's /etc/passwd, read through rootfs without following a symlink
// out of it.
func LookupUser(rootfs, name string) (User, error) {
	if name == "" {
		name = "root"
	}
	numeric, nerr := strconv.Atoi(name)
	p, err := securejoin.SecureJoin(rootfs, "/etc/passwd")
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", name, err)
	}
	f, err := os.Open(p)
	if err != nil {
		if os.IsNotExist(err) && (name == "root" || (nerr == nil && numeric == 0)) {
			return User{Name: "root", Home: "/root"}, nil
		}
		if os.IsNotExist(err) && nerr == nil {
			return User{UID: numeric, GID: numeric, Home: "/"}, nil
		}
		return User{}, fmt.Errorf("user %s: %w", name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ":")
		if len(fs) < 7 {
			continue
		}
		uid, err1 := strconv.Atoi(fs[2])
		gid, err2 := strconv.Atoi(fs[3])
		if err1 != nil || err2 != nil {
			continue
		}
		if fs[0] == name || (nerr == nil && uid == numeric) {
			u := User{Name: fs[0], UID: uid, GID: gid, Home: fs[5], Shell: fs[6]}
			u.Groups, err = groupsOf(rootfs, u.Name, gid)
			return u, err
		}
	}
	if nerr == nil {
		return User{UID: numeric, GID: numeric, Home: "/"}, nil
	}
	if name == "root" {
		return User{Name: "root", Home: "/root"}, nil
	}
	return User{}, fmt.Errorf("user %s: not in the container's /etc/passwd", name)
}

// DefaultPath is the PATH a job gets unless its env sets one.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// JobEnv is a job's whole environment: PATH, HOME and TERM, then the spec's
// env (which may override them). Nothing comes from the host.
func JobEnv(env map[string]string, u User) []string {
	home := u.Home
	if home == "" {
		home = "/"
	}
	all := map[string]string{"PATH": DefaultPath, "HOME": home, "TERM": "dumb"}
	for k, v := range env {
		all[k] = v
	}
	out := make([]string, 0, len(all))
	for k, v := range all {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// groupsOf lists the gids /etc/group names user a member of (besides its
// primary gid).
func groupsOf(rootfs, user string, primary int) ([]int, error) {
	p, err := securejoin.SecureJoin(rootfs, "/etc/group")
	if err != nil {
		return nil, fmt.Errorf("groups of %s: %w", user, err)
	}
	f, err := os.Open(p)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("groups of %s: %w", user, err)
	}
	defer f.Close()
	var out []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ":")
		if len(fs) < 4 {
			continue
		}
		gid, err := strconv.Atoi(fs[2])
		if err != nil || gid == primary {
			continue
		}
		for _, m := range strings.Split(fs[3], ",") {
			if m == user {
				out = append(out, gid)
				break
			}
		}
	}
	return out, sc.Err()
}
