package runner

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/spec"
)

// TestServicesNetwork: a job with services joins its private bridge
// whatever its mode: none on an internal one, bridge on one with a way
// out, host in the host's namespace with the bridge's hosts file.
func TestServicesNetwork(t *testing.T) {
	nm, err := stintnet.OpenDir(t.TempDir())
	require.NoError(t, err)
	r := &Runner{Net: nm}
	for mode, want := range map[string]spec.Network{
		"none":   {Mode: "bridge", Bridge: stintnet.PrivateBridge("stint-j-1", false)},
		"bridge": {Mode: "bridge", Bridge: stintnet.PrivateBridge("stint-j-1", true)},
		"host":   {Mode: "host"},
	} {
		req := Request{Container: "stint-j-1", Network: spec.Network{Mode: mode}}
		bridge := r.servicesNetwork(&req, spec.Job{Network: spec.Network{Mode: mode}})
		assert.Equal(t, want, req.Network, mode)
		assert.True(t, stintnet.IsPrivateBridge(bridge), mode)
		if mode == "host" {
			require.Len(t, req.Mounts, 1)
			assert.Equal(t, spec.Mount{Type: spec.MountBind, Source: nm.HostsFile(bridge), Target: "/etc/hosts", Readonly: true}, req.Mounts[0])
		} else {
			assert.Equal(t, want.Bridge, bridge)
			assert.Empty(t, req.Mounts)
		}
	}
}

// TestServiceRequest: a service is its own job-kind container on the
// bridge, named by the service's name there, its command as PID 1.
func TestServiceRequest(t *testing.T) {
	r := &Runner{LogDir: "/logs"}
	svc := spec.Service{Name: "db", Image: "busybox", Command: []string{"nc", "-ll"}, Env: map[string]string{"B": "2", "A": "1"},
		Ports: []spec.Port{{HostPort: 1, ContainerPort: 2, Proto: "tcp"}}}
	req := r.serviceRequest(spec.Job{Name: "test"}, svc, "sji0123456789ab")
	assert.True(t, strings.HasPrefix(req.Container, "stint-test-db-"), req.Container)
	assert.Equal(t, "test/db", req.Name)
	assert.Equal(t, "db", req.Hostname)
	assert.Equal(t, spec.Network{Mode: "bridge", Bridge: "sji0123456789ab"}, req.Network)
	assert.Equal(t, container.Init{Kind: container.InitCommand, Command: []string{"nc", "-ll"}, Env: []string{"A=1", "B=2"},
		ConsoleLog: "/logs/" + req.Container + ".log"}, req.Init)
	assert.Equal(t, svc.Ports, req.Ports)
	assert.True(t, req.Start && req.Render)

	svc.Command = nil
	assert.Equal(t, container.InitBoot, r.serviceRequest(spec.Job{Name: "test"}, svc, "b").Init.Kind, "no command: the image's init")
}

func TestServiceErrorMessages(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		err  *ServiceError
		want string
	}{
		{&ServiceError{Job: "t", Service: "db", Err: boom}, "service db: boom"},
		{&ServiceError{Job: "t", Service: "db", NotReady: true, Exited: true, Output: "bye\n"}, "job t: service db: its command ended before it was ready: bye"},
		{&ServiceError{Job: "t", Service: "db", NotReady: true, Timeout: 2 * time.Second, Check: "false", Status: &container.ExitStatus{Code: 1}},
			`job t: service db: not ready after 2s: ready check "false": exit 1`},
		{&ServiceError{Job: "t", Service: "db", NotReady: true, Timeout: time.Minute, Check: "x", Err: boom},
			`job t: service db: not ready after 1m0s: ready check "x": boom`},
	} {
		assert.Equal(t, c.want, c.err.Error())
	}
	assert.ErrorIs(t, &ServiceError{Err: boom}, boom)
}

func TestCapped(t *testing.T) {
	var c capped
	_, _ = c.Write([]byte(strings.Repeat("a", 5000)))
	_, _ = c.Write([]byte("end"))
	assert.Len(t, c.String(), 4096)
	assert.True(t, strings.HasSuffix(c.String(), "aend"))
}
