package lxcrt

/*
#cgo pkg-config: lxc
#include "monitor.h"
*/
import "C"

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The fast path's monitor (issue 16). A job's container runs under a
// monitor process, liblxc's start not daemonized, as under `lxc-start -F`;
// but the monitor is a process of stint's own binary that stops in a C
// constructor before the Go runtime starts (monitor.c, as runc's nsexec
// does) and waits there for the container to start, and it is spawned
// ahead of time: Prime, called as a launch begins, has one spawned while
// the record, the clone and the config are made. The start then pays for
// neither the exec nor the dynamic linking of liblxc and its libraries,
// about a millisecond of lxc-start's (bench/RESULTS.md).
//
// A spare monitor reads the end of its socket when stint is gone (the
// kernel closes stint's end, which no other process holds: it is
// close-on-exec) and exits; Close kills the spares of a Runtime. No death
// signal: Linux sends it when the thread that spawned the process exits,
// and a Go thread may exit under a goroutine that locked it. Once given a
// container, a monitor outlives a stint that dies, as lxc-start's did (the
// agent then serves on as a plain init).

const (
	monitorEnv = C.STINT_MONITOR_ENV
	monitorFD  = C.STINT_MONITOR_FD
	monitorMax = C.STINT_MONITOR_MAX
)

// monitor is a spawned monitor waiting for its container.
type monitor struct {
	cmd *exec.Cmd
	ctl *os.File // this end of its socket (its fd 3)
}

// spawnMonitor starts a monitor of binary self.
func spawnMonitor(self string) (*monitor, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("monitor socket: %w", err)
	}
	ctl, child := os.NewFile(uintptr(fds[0]), "monitor"), os.NewFile(uintptr(fds[1]), "monitor")
	defer child.Close()
	cmd := exec.Command(self)
	cmd.Args = []string{"stint-monitor"}
	// Until it has its container: what lxc-start gets (agent.go) once
	// the request sets PATH.
	cmd.Env = []string{monitorEnv + "=1", "PATH=/nonexistent", "LC_ALL=C"}
	cmd.ExtraFiles = []*os.File{child} // fd 3: monitorFD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		ctl.Close()
		return nil, fmt.Errorf("spawn the monitor: %w", err)
	}
	return &monitor{cmd: cmd, ctl: ctl}, nil
}

// run has m start container name of lxcpath, with liblxc's PATH path, the
// agent's socket as the container's fd 3, and its output into out.
func (m *monitor) run(lxcpath, name, path string, agentSock, out *os.File) error {
	defer m.ctl.Close()
	msg := lxcpath + "\x00" + name + "\x00" + path + "\x00"
	if len(msg) >= monitorMax {
		return fmt.Errorf("monitor request for %s: %d bytes, over %d", name, len(msg), monitorMax-1)
	}
	rights := unix.UnixRights(int(agentSock.Fd()), int(out.Fd()))
	if err := unix.Sendmsg(int(m.ctl.Fd()), []byte(msg), rights, nil, 0); err != nil {
		return fmt.Errorf("monitor request for %s: %w", name, err)
	}
	return nil
}

// startMonitor has a monitor start container name (see run): a spare, or
// one spawned now. A spare that can't take the request (it was killed
// meanwhile) is replaced by a new one once.
func (r *Runtime) startMonitor(name, path string, agentSock, out *os.File) (*monitor, error) {
	m, err := r.monitors.take(r.self)
	if err != nil {
		return nil, err
	}
	if err = m.run(r.lxcpath, name, path, agentSock, out); err == nil {
		return m, nil
	}
	m.kill()
	if m, err = spawnMonitor(r.self); err != nil {
		return nil, err
	}
	if err := m.run(r.lxcpath, name, path, agentSock, out); err != nil {
		m.kill()
		return nil, err
	}
	return m, nil
}

// kill ends a monitor that was never given a container.
func (m *monitor) kill() {
	m.ctl.Close()
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
}

// monitorPool holds a Runtime's spare monitors.
type monitorPool struct {
	mu      sync.Mutex
	cond    sync.Cond // signalled when a spawn ends
	ready   []*monitor
	pending int // spawns under way
}

// prepare spawns a spare monitor of self in the background.
func (p *monitorPool) prepare(self string) {
	p.mu.Lock()
	p.pending++
	p.mu.Unlock()
	go func() {
		m, err := spawnMonitor(self)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.pending--
		if err == nil {
			p.ready = append(p.ready, m)
		}
		p.cond.Broadcast()
	}()
}

// take returns a spare monitor, waiting for a spawn under way, or spawns
// one now.
func (p *monitorPool) take(self string) (*monitor, error) {
	p.mu.Lock()
	for len(p.ready) == 0 && p.pending > 0 {
		p.waitLocked()
	}
	if n := len(p.ready); n > 0 {
		m := p.ready[n-1]
		p.ready = p.ready[:n-1]
		p.mu.Unlock()
		return m, nil
	}
	p.mu.Unlock()
	return spawnMonitor(self)
}

// drop kills every spare, once the spawns under way have ended.
func (p *monitorPool) drop() {
	p.mu.Lock()
	p.spawnedLocked()
	spares := p.ready
	p.ready = nil
	p.mu.Unlock()
	for _, m := range spares {
		m.kill()
	}
}

// spawnedLocked waits, p.mu held, until no spawn is under way.
func (p *monitorPool) spawnedLocked() {
	for p.pending > 0 {
		p.waitLocked()
	}
}

func (p *monitorPool) waitLocked() {
	if p.cond.L == nil {
		p.cond.L = &p.mu
	}
	p.cond.Wait()
}

// Close kills the Runtime's spare monitors (see Prime).
func (r *Runtime) Close() error {
	r.monitors.drop()
	return nil
}
