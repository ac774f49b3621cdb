// The monitor's start before the Go runtime (see monitor.go): a process of
// stint's binary started with STINT_MONITOR_ENV set stops here, in a C
// constructor that runs before Go's runtime and package inits, and waits
// on fd 3 for the one container it is to run. It then does what
// `lxc-start -F -P LXCPATH -n NAME` does (liblxc's start, not daemonized)
// and exits when the container has stopped, with lxc-start's exit codes.
// Every other process of the binary returns from the constructor at once.

#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lxc/lxccontainer.h>

#include "monitor.h"

// monitor_fail reports a failure before the container started, as
// lxc-start reports its own, and exits.
static void monitor_fail(const char *what, int err)
{
	if (err)
		fprintf(stderr, "stint monitor: %s: %s\n", what, strerror(err));
	else
		fprintf(stderr, "stint monitor: %s\n", what);
	_exit(EXIT_FAILURE);
}

// monitor_request is the one request: the strings and the descriptors.
struct monitor_request {
	char buf[STINT_MONITOR_MAX];
	const char *lxcpath, *name, *path;
	int agent, out;
};

// monitor_receive reads the request from fd 3. It returns false when the
// socket ends first: stint is gone or no longer needs this monitor.
static bool monitor_receive(struct monitor_request *req)
{
	union {
		char b[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = {.iov_base = req->buf, .iov_len = sizeof(req->buf) - 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b, .msg_controllen = sizeof(cbuf.b)};
	ssize_t n;

	do {
		n = recvmsg(STINT_MONITOR_FD, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n == 0)
		return false;
	if (n < 0)
		monitor_fail("read the request", errno);
	req->buf[n] = '\0';

	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || !cm || cm->cmsg_level != SOL_SOCKET ||
	    cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(2 * sizeof(int)))
		monitor_fail("malformed request", 0);
	int fds[2];
	memcpy(fds, CMSG_DATA(cm), sizeof(fds));
	req->agent = fds[0];
	req->out = fds[1];

	// Three strings, each ended by a NUL: LXCPATH, NAME, PATH.
	const char *p = req->buf, *end = req->buf + n;
	const char **fields[] = {&req->lxcpath, &req->name, &req->path};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *nul = memchr(p, '\0', end - p);
		if (!nul || nul == p)
			monitor_fail("malformed request", 0);
		*fields[i] = p;
		p = nul + 1;
	}
	return true;
}

__attribute__((constructor)) static void stint_monitor(void)
{
	if (!getenv(STINT_MONITOR_ENV))
		return;

	struct monitor_request req;
	if (!monitor_receive(&req))
		_exit(EXIT_SUCCESS);

	// Its output goes where lxc-start's went; the agent's socket is fd 3,
	// in the container too (liblxc keeps what a foreground start inherits).
	if (dup2(req.out, STDOUT_FILENO) < 0 || dup2(req.out, STDERR_FILENO) < 0 ||
	    dup2(req.agent, STINT_MONITOR_FD) < 0)
		monitor_fail("set up descriptors", errno);
	if (req.out > STINT_MONITOR_FD)
		close(req.out);
	if (req.agent > STINT_MONITOR_FD)
		close(req.agent);
	if (unsetenv(STINT_MONITOR_ENV) < 0 || setenv("PATH", req.path, 1) < 0)
		monitor_fail("set up the environment", errno);

	struct lxc_container *c = lxc_container_new(req.name, req.lxcpath);
	if (!c)
		monitor_fail("failed to create lxc_container", 0);
	if (c->is_running(c)) {
		fprintf(stderr, "stint monitor: container %s is already running\n", req.name);
		lxc_container_put(c);
		_exit(EXIT_SUCCESS); // as lxc-start
	}
	c->want_daemonize(c, false);
	int code = EXIT_SUCCESS;
	if (!c->start(c, 0, NULL)) {
		fprintf(stderr, "stint monitor: the container failed to start\n");
		code = c->error_num;
	}
	lxc_container_put(c);
	_exit(code);
}
