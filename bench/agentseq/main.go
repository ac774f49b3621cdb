// Command agentseq is the benchmark's model of stint's fast start path for
// a trivial job, outside stint (issue 16): a btrfs snapshot of a shifted
// base rootfs, a lean LXC config, `lxc-start -F` (liblxc's start, not
// daemonized: the container's PID 1 inherits the pipes) with stint-agent as
// PID 1, one line (/bin/sh -c /bin/true) through the agent, the agent's
// exit (which stops the container), and the snapshot deleted. It shows what
// the runtime can reach with the agent before stint's own costs (its
// process start, spec, journal) are added.
//
//	agentseq -base /var/lib/stint-bench/btrfs/lxc/ubase/rootfs -agent bin/stint-agent -dir /var/lib/stint-bench/btrfs/agentseq
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/stintdev/stint/internal/agent"
	"github.com/stintdev/stint/internal/idmap"
)

func main() {
	base := flag.String("base", "", "a btrfs subvolume holding a rootfs shifted to root's subordinate ids")
	bin := flag.String("agent", "", "the static stint-agent binary")
	dir := flag.String("dir", "", "a directory on the same btrfs for the clone and the container")
	flag.Parse()
	if *base == "" || *bin == "" || *dir == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*base, *bin, *dir); err != nil {
		fmt.Fprintf(os.Stderr, "agentseq: %v\n", err)
		os.Exit(1)
	}
}

func run(base, bin, dir string) (err error) {
	m, err := idmap.Load("/etc/subuid", "/etc/subgid")
	if err != nil {
		return err
	}
	name := fmt.Sprintf("a%d", os.Getpid())
	lxcpath, rootfs := filepath.Join(dir, "lxc"), filepath.Join(dir, "rootfs-"+name)
	if err := os.MkdirAll(filepath.Join(lxcpath, name), 0o755); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(filepath.Join(lxcpath, name))) }()
	if out, err := exec.Command("btrfs", "-q", "subvolume", "snapshot", base, rootfs).CombinedOutput(); err != nil {
		return fmt.Errorf("snapshot %s: %w: %s", base, err, out)
	}
	defer func() {
		if out, derr := exec.Command("btrfs", "-q", "subvolume", "delete", rootfs).CombinedOutput(); derr != nil {
			err = errors.Join(err, fmt.Errorf("delete %s: %w: %s", rootfs, derr, out))
		}
	}()
	conf := []string{
		"lxc.uts.name = " + name,
		"lxc.rootfs.path = dir:" + rootfs,
		"lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed",
		"lxc.autodev = 1",
		"lxc.pty.max = 0",
		"lxc.tty.max = 0",
		"lxc.console.path = none",
		"lxc.cap.drop = sys_module mac_admin mac_override sys_time",
		"lxc.apparmor.profile = unconfined",
		"lxc.seccomp.profile = /usr/share/lxc/config/common.seccomp",
		fmt.Sprintf("lxc.idmap = u 0 %d %d", m.HostUID, m.Size),
		fmt.Sprintf("lxc.idmap = g 0 %d %d", m.HostGID, m.Size),
		"lxc.mount.entry = " + bin + " .stint/agent none bind,ro,create=file 0 0",
		"lxc.init.cmd = /.stint/agent",
		"lxc.net.0.type = empty",
		"lxc.log.file = " + filepath.Join(lxcpath, name, "lxc.log"),
		"lxc.log.level = WARN",
	}
	if err := os.WriteFile(filepath.Join(lxcpath, name, "config"), []byte(strings.Join(conf, "\n")+"\n"), 0o640); err != nil {
		return err
	}
	return startAndRun(lxcpath, name)
}

func startAndRun(lxcpath, name string) error {
	rt, ag, err := agent.Socketpair()
	if err != nil {
		return err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	start := exec.Command("lxc-start", "-F", "-P", lxcpath, "-n", name)
	// No newuidmap on PATH: root writes the maps itself, as stint's helper does.
	start.Env = []string{"PATH=/nonexistent", "LC_ALL=C"}
	start.Stdout, start.Stderr = os.Stdout, os.Stderr
	start.ExtraFiles = []*os.File{ag}
	start.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := start.Start(); err != nil {
		return err
	}
	ag.Close()
	c := agent.NewClient(rt)
	if _, err := c.Ready(); err != nil {
		_ = c.Close()
		_ = start.Wait()
		return err
	}
	ws, err := c.Run(agent.Command{Argv: []string{"/bin/sh", "-c", "/bin/true"}, Env: []string{"PATH=/bin"}}, null, os.Stdout, os.Stderr)
	if err == nil && ws.ExitStatus() != 0 {
		err = fmt.Errorf("/bin/true: %v", ws)
	}
	if xerr := c.Exit(); err == nil {
		err = xerr
	}
	if werr := start.Wait(); err == nil {
		err = werr
	}
	return err
}
