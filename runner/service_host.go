package runner

import (
	"context"
	"errors"
	"fmt"

	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/spec"
)

// The private network of a container with services that outlives one stint
// process (the GitLab driver's job containers, long-lived containers of its
// set): the same bridge as a `stint run` job's (service.go), named from the
// job container's name so that every later call finds it again.

// ServicesNetwork is the network of job container name (a long-lived
// container's name in its set) whose services share its private bridge,
// for the job's network mode: none (an internal bridge), bridge (one with
// a way out), or host (the host's namespace, with the bridge's hosts file
// bound at /etc/hosts: the second result). Services get the same bridge
// with ServiceNetwork. Make the services first: the hosts file exists from
// the first container on the bridge.
func (h *Host) ServicesNetwork(ctx context.Context, name, mode string) (job spec.Network, mounts []spec.Mount, err error) {
	r, err := h.engine(ctx)
	if err != nil {
		return spec.Network{}, nil, err
	}
	if r.Net == nil {
		return spec.Network{}, nil, fmt.Errorf("container %s: services need a network manager: %w", name, errors.ErrUnsupported)
	}
	bridge := stintnet.PrivateBridge(name, mode == stintnet.ModeBridge)
	switch mode {
	case stintnet.ModeHost:
		return spec.Network{Mode: stintnet.ModeHost}, []spec.Mount{{Type: spec.MountBind,
			Source: r.Net.HostsFile(bridge), Target: "/etc/hosts", Readonly: true}}, nil
	case "", stintnet.ModeNone, stintnet.ModeBridge:
		return spec.Network{Mode: stintnet.ModeBridge, Bridge: bridge}, nil, nil
	default:
		return spec.Network{}, nil, fmt.Errorf("container %s: network mode %q: %w", name, mode, stintnet.ErrBadRequest)
	}
}

// ServiceNetwork is the network of a service of job container name (see
// ServicesNetwork).
func ServiceNetwork(name, mode string) spec.Network {
	return spec.Network{Mode: stintnet.ModeBridge, Bridge: stintnet.PrivateBridge(name, mode == stintnet.ModeBridge)}
}

// RemoveServicesNetwork removes job container name's private bridge (of
// either kind) once no container is on it; idempotent.
func (h *Host) RemoveServicesNetwork(ctx context.Context, name string) error {
	r, err := h.engine(ctx)
	if err != nil || r.Net == nil {
		return err
	}
	var errs []error
	for _, outbound := range []bool{false, true} {
		if err := r.Net.RemovePrivate(ctx, stintnet.PrivateBridge(name, outbound)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
