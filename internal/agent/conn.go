package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// MaxMessage bounds one message (a command with its whole environment).
const MaxMessage = 1 << 20

// conn is one end of the agent's socket: a SOCK_SEQPACKET socket, so that
// each message (one JSON object) arrives whole, with the descriptors sent
// along with it (SCM_RIGHTS).
type conn struct {
	fd  int
	buf []byte // grown to the largest message received, up to MaxMessage
	oob []byte
}

// initialBuf fits a command with a usual environment and every reply.
const initialBuf = 4 << 10

func newConn(fd int) *conn {
	return &conn{fd: fd, buf: make([]byte, initialBuf), oob: make([]byte, unix.CmsgSpace(4*3))}
}

// Socketpair returns two connected ends for the agent's socket: the
// runtime keeps the first and hands the second to the agent as ControlFD.
func Socketpair() (runtime, agent *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("agent socket: %w", err)
	}
	// A datagram must fit its sender's send buffer whole (else EMSGSIZE),
	// and the default (net.core.wmem_default, ~208 KiB) is less than
	// MaxMessage: a command with a large environment could not be sent.
	for _, fd := range fds {
		sendBuffer(fd, 2*MaxMessage)
	}
	return os.NewFile(uintptr(fds[0]), "agent-runtime"), os.NewFile(uintptr(fds[1]), "agent"), nil
}

// sendBuffer raises fd's send buffer to size bytes: SO_SNDBUFFORCE as root
// (past net.core.wmem_max), else SO_SNDBUF as far as wmem_max allows. Best
// effort: a message over what it got fails to send (EMSGSIZE), as before.
func sendBuffer(fd, size int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, size)
	}
}

// send writes v as one message, with fds.
func (c *conn) send(v any, fds ...int) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > MaxMessage {
		return fmt.Errorf("message of %d bytes is over the agent's limit of %d", len(b), MaxMessage)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	for {
		err = unix.Sendmsg(c.fd, b, oob, nil, 0)
		if err != unix.EINTR {
			break
		}
	}
	if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		return ErrGone
	}
	return err
}

// recv reads one message into v and returns the descriptors that came
// with it (the caller owns them). io.EOF-like ends are ErrGone.
func (c *conn) recv(v any) ([]int, error) {
	if err := c.fit(); err != nil {
		return nil, err
	}
	var n, oobn, flags int
	var err error
	for {
		n, oobn, flags, _, err = unix.Recvmsg(c.fd, c.buf, c.oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if errors.Is(err, unix.ECONNRESET) {
		return nil, ErrGone
	}
	if err != nil {
		return nil, err
	}
	fds, perr := parseRights(c.oob[:oobn])
	switch {
	case n == 0 && oobn == 0:
		return nil, ErrGone
	case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0:
		closeAll(fds)
		return nil, fmt.Errorf("%w: message truncated (over %d bytes or too many descriptors)", ErrProtocol, MaxMessage)
	case perr != nil:
		closeAll(fds)
		return nil, fmt.Errorf("%w: %w", ErrProtocol, perr)
	}
	if err := json.Unmarshal(c.buf[:n], v); err != nil {
		closeAll(fds)
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return fds, nil
}

// fit grows the buffer to the next message's size (at most MaxMessage: a
// larger one is then read truncated, and refused). A buffer of MaxMessage
// for every session cost a stint running many jobs megabytes of heap. It
// waits for the message: the peer's end (every message has JSON bytes, so
// an empty one is the end) is ErrGone at once, without another read.
func (c *conn) fit() error {
	for {
		// MSG_PEEK|MSG_TRUNC: the whole length of the next message, left
		// queued with its descriptors (no control buffer: none installed).
		n, _, _, _, err := unix.Recvmsg(c.fd, c.buf[:1], nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		switch {
		case err == unix.EINTR:
			continue
		case errors.Is(err, unix.ECONNRESET), errors.Is(err, unix.EBADF), err == nil && n == 0:
			// EBADF: the runtime closed a session whose monitor ended.
			return ErrGone
		case err != nil:
			return err
		case n > len(c.buf):
			c.buf = make([]byte, min(n, MaxMessage))
		}
		return nil
	}
}

func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		rights, err := unix.ParseUnixRights(&m)
		if err != nil {
			closeAll(fds)
			return nil, err
		}
		fds = append(fds, rights...)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		_ = syscall.Close(fd)
	}
}
