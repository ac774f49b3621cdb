#!/bin/bash
# A real 3-member LXD cluster on this one host, for integration tests: three daemons with their own
# LXD_DIR, each in its own network namespace on a test bridge. Forms in about 5 s, ~64 MB a member.
# Prints the members' HTTPS addresses. Tear down with cluster-down.sh (same environment).
# Copied from the recipe proven in ../shared/lxdcluster (internal/lxdenv runs it from Go tests),
# with three changes: each member's lxd pid is kept in its LXD_DIR (so teardown kills by pid),
# lxc gets its own LXD_CONF, and the /16 guard is shared with other clusters (see cluster-down.sh).
#   LXDC_PREFIX   names of the bridge, namespaces and dirs   (default lxdc)
#   LXDC_NET      the /24 the members live on                (default 10.77.0)
# Nothing leaves the machine: the whole 10.77.0.0/16 gets an unreachable route first (the bridge's
# own /24 is more specific and wins), because `lxd init` joins dial the cluster address themselves.
set -euo pipefail
P=${LXDC_PREFIX:-lxdc}; N=${LXDC_NET:-10.77.0}; HERE=$(cd "$(dirname "$0")" && pwd)
command -v lxd >/dev/null || { echo "cluster-up: lxd is not installed (apt-get install lxd)" >&2; exit 1; }
export LXD_CONF=/var/lib/$P-lxcconf
ip route replace unreachable "${N%.*}.0.0/16" 2>/dev/null || true
ip link add "${P}br0" type bridge
ip addr add "$N.1/24" dev "${P}br0"
ip link set "${P}br0" up
for i in 1 2 3; do
  ip netns add "$P$i"
  ip link add "v$P$i" type veth peer name eth0 netns "$P$i"
  ip link set "v$P$i" master "${P}br0" up
  ip -n "$P$i" addr add "$N.1$i/24" dev eth0
  ip -n "$P$i" link set eth0 up; ip -n "$P$i" link set lo up
done
start_member() {
  local i=$1 d=/var/lib/$P-c$1
  mkdir -p "$d" && chmod 711 "$d"
  # setsid, nohup, ip netns exec and the wrapper all exec: $! is lxd's pid.
  LXD_DIR=$d setsid nohup ip netns exec "$P$i" "$HERE/lxd-in-netns.sh" --group root --logfile "$d/lxd.log" \
    >"$d/daemon.out" 2>&1 </dev/null &
  echo $! >"$d/lxd.pid"
  LXD_DIR=$d timeout 90 lxd waitready --timeout 80
}
start_member 1
LXD_DIR=/var/lib/$P-c1 timeout 120 ip netns exec "${P}1" lxd init --preseed <<EOP
config:
  core.https_address: $N.11:8443
cluster:
  server_name: c1
  enabled: true
storage_pools:
- name: local
  driver: dir
profiles:
- name: default
  devices:
    root: {path: /, pool: local, type: disk}
EOP
for i in 2 3; do
  start_member $i
  tok=$(LXD_DIR=/var/lib/$P-c1 timeout 30 lxc cluster add "c$i" --quiet)
  LXD_DIR=/var/lib/$P-c$i timeout 180 ip netns exec "$P$i" lxd init --preseed <<EOP
cluster:
  enabled: true
  server_name: c$i
  server_address: $N.1$i:8443
  cluster_token: $tok
  member_config:
  - {entity: storage-pool, name: local, key: source, value: ""}
EOP
done
LXD_DIR=/var/lib/$P-c1 lxc cluster list -f csv >&2
for i in 1 2 3; do echo "https://$N.1$i:8443"; done
