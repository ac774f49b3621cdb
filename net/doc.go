// Package stintnet gives containers their network: mode none (loopback
// only), host (the host's network namespace) or bridge (a veth into a bridge
// that stint manages, with NAT, static addresses, names and port forwards).
//
// The package lives in the directory net/ and is named stintnet so that it
// does not shadow the standard library's net.
//
// # Lifecycle
//
// The runner drives one Manager per stint root:
//
//	m, err := stintnet.Open(root)          // host-wide state in StateDir()
//	lease, err := m.Attach(ctx, req)       // before the container starts:
//	                                       // bridge ensured, address allocated,
//	                                       // hosts entry and port forwards added
//	// hand the lease to the runtime (a bridge attachment), start the container
//	err = m.Started(ctx, lease, initPID)   // after start: checks the veth is on the bridge
//	...
//	err = m.Release(ctx, lease.Container)  // on every teardown path; idempotent
//
// A Lease is JSON-serialisable: the runner keeps it in its crash journal, and
// after a kill -9 `stint gc` calls Release with the container's name. Release
// needs nothing but the name: the host-side veth name is derived from it
// (VethName) and the firewall rules carry it in their comment.
//
// Prune removes managed bridges (and, with the last one, stint's nftables
// table) that no lease uses; it never removes a bridge a container uses
// (a lease of any root, or a port in the kernel).
//
// The state is host-wide, like the bridges and the table it describes:
// every stint root on the host shares one allocator and one lock, in
// /run/stint/net or $STINT_NET_STATE (OpenDir takes a directory). A lease
// records its root, and a root's gc releases only its own (Manager.Owns).
//
// # A corrupt state
//
// One garbled state.json must not fail every job on the host. The store
// meets a state it cannot trust (torn, garbled, or of the wrong shape) as a
// *CorruptStateError in one place, under its exclusive lock: it rebuilds
// the state from the kernel and the files beside it (the bridges marked as
// stint's whose hosts file is in the state directory, the nftables rules'
// comments and forwards, the veths on those bridges and, through each
// veth's peer, the address and the LXC monitor of the container behind
// it), keeps the bad file as state.json.corrupt-<UTC time>, saves the
// rebuilt state and writes a warning (SetWarnings; os.Stderr by default).
// An address whose container cannot be named for sure is reserved (see
// Reservation) rather than handed out twice.
//
// # What is on the host
//
//   - a bridge per network (default stint0, 10.88.0.0/24; the next free /24 of
//     10.88.0.0/16 when that collides with a host route or address), marked as
//     stint's by its link alias;
//   - an nftables table "ip stint" with NAT (masquerade of the bridge's subnet,
//     DNAT for published ports) and forward-accept rules;
//   - net.ipv4.ip_forward=1 (needed to route the containers' traffic), and
//     route_localnet=1 on the bridge (so that a published port answers on
//     127.0.0.1);
//   - <state>/state.json (leases, bridges) guarded by <state>/lock, and
//     per bridge <state>/<bridge>/hosts and resolv.conf, bind-mounted
//     read-only into each container at /etc/hosts and /etc/resolv.conf.
//
// Names resolve without a daemon: the hosts file lists every container on the
// bridge and is rewritten in place (not by rename) so that the bind mounts in
// running containers see each update.
package stintnet
