package lxcrt

import "golang.org/x/sys/unix"

// ContainerCgroups exposes containerCgroups to the package's external tests.
var ContainerCgroups = containerCgroups

// KillSpares kills r's spare monitors without taking them out of its pool,
// once the spawns under way have ended, and returns when they are dead
// (not reaped: the pool's owner reaps them): as if something else had
// killed them earlier. A spare killed while its request is on the way
// takes the request with it, as a killed lxc-start would.
func KillSpares(r *Runtime) int {
	p := &r.monitors
	p.mu.Lock()
	defer p.mu.Unlock()
	p.spawnedLocked()
	for _, m := range p.ready {
		_ = m.cmd.Process.Kill()
		var info unix.Siginfo
		_ = unix.Waitid(unix.P_PID, m.cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
	}
	return len(p.ready)
}
