// Package agentproxy hands a developer's SSH agent to a container for the
// length of a `stint shell` session (`ssh_agent = true`).
//
// Why a proxy and not a bind of $SSH_AUTH_SOCK: a dev box is made once and
// entered many times, from sessions whose agents live at different paths
// (/tmp/ssh-XXXX/agent.PID changes with every login). A socket bound when
// the container was made is dead by the next login, and binding the
// agent's directory would hand over its neighbours too
// (/run/user/UID holds D-Bus, GnuPG and PipeWire sockets). Instead the
// container gets one directory of stint's, bound when it is made, and
// each `stint shell` listens on a socket of its own in it, forwarding every
// connection to the agent of the session that ran it. The socket exists
// while the shell does.
//
// The agent is reached through the descriptor hostuser.OpenAgent checked
// (a socket owned by the user), never by its path again, so the user can't
// swap in someone else's socket for stint (root) to connect to.
package agentproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"github.com/stintdev/stint/internal/hostuser"
)

// Proxy is a listening socket forwarding to an agent.
type Proxy struct {
	ln    *net.UnixListener
	path  string
	agent *hostuser.Agent
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Listen makes a socket at path (removed first if a stale one is there),
// owned by uid:gid with mode 0600, and forwards every connection to agent
// until Close. The caller keeps agent open until then.
func Listen(path string, agent *hostuser.Agent, uid, gid int) (*Proxy, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("agent proxy %s: exists and is not a socket", path)
		}
		_ = os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("agent proxy %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	// The socket's directory keeps others out meanwhile (it is the user's,
	// 0700); the socket itself is the user's alone from now on.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("agent proxy %s: %w", path, err)
	}
	if err := os.Lchown(path, uid, gid); err != nil {
		ln.Close()
		return nil, fmt.Errorf("agent proxy %s: %w", path, err)
	}
	p := &Proxy{ln: ln, path: path, agent: agent, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Path is the socket's host path.
func (p *Proxy) Path() string { return p.path }

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// forward copies between a client and a fresh connection to the agent.
func (p *Proxy) forward(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	a, err := net.Dial("unix", p.agent.ConnectPath())
	if err != nil {
		return // the agent went away: the client sees its connection close
	}
	defer a.Close()
	if !p.track(c, a) {
		return
	}
	defer p.untrack(c, a)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(a, c); closeWrite(a); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, a); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if u, ok := c.(*net.UnixConn); ok {
		_ = u.CloseWrite()
	}
}

// track records open connections so Close can end them; false once closed.
func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

// Close stops listening, removes the socket, ends open connections and
// waits for their copiers.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
