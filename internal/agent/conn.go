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
	buf []byte
	oob []byte
}

func newConn(fd int) *conn {
	return &conn{fd: fd, buf: make([]byte, MaxMessage), oob: make([]byte, unix.CmsgSpace(4*3))}
}

// Socketpair returns two connected ends for the agent's socket: the
// runtime keeps the first and hands the second to the agent as ControlFD.
func Socketpair() (runtime, agent *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("agent socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "agent-runtime"), os.NewFile(uintptr(fds[1]), "agent"), nil
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
