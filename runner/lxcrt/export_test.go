package lxcrt

// ContainerCgroups exposes containerCgroups to the package's external tests.
var ContainerCgroups = containerCgroups

// KillSpares kills r's spare monitors without taking them out of its pool,
// once the spawns under way have ended: as if something else killed them.
func KillSpares(r *Runtime) int {
	p := &r.monitors
	p.mu.Lock()
	defer p.mu.Unlock()
	p.spawnedLocked()
	for _, m := range p.ready {
		_ = m.cmd.Process.Kill()
	}
	return len(p.ready)
}
