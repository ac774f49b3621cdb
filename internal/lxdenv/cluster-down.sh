#!/bin/bash
# Tears down what cluster-up.sh made (same LXDC_PREFIX / LXDC_NET). Safe to run twice.
# Unlike the shared recipe, the unreachable route on the /16 is removed only when no address in
# that /16 is left on the host: another cluster on a sibling /24 may still rely on it.
set -u
P=${LXDC_PREFIX:-lxdc}; N=${LXDC_NET:-10.77.0}
export LXD_CONF=/var/lib/$P-lxcconf
for i in 1 2 3; do
  if [ -S /var/lib/$P-c$i/unix.socket ]; then
    for n in $(LXD_DIR=/var/lib/$P-c$i timeout 20 lxc list -c n -f csv 2>/dev/null); do
      LXD_DIR=/var/lib/$P-c$i timeout 30 lxc delete -f "$n" >/dev/null 2>&1
    done
    break
  fi
done
for i in 3 2 1; do
  d=/var/lib/$P-c$i
  [ -S $d/unix.socket ] && LXD_DIR=$d timeout 60 lxd shutdown >/dev/null 2>&1
  p=$(cat $d/lxd.pid 2>/dev/null)
  if [ -n "$p" ] && tr '\0' ' ' </proc/$p/cmdline 2>/dev/null | grep -q -- "--logfile $d/lxd.log"; then
    kill "$p" 2>/dev/null; sleep 1; kill -0 "$p" 2>/dev/null && kill -9 "$p"
  fi
done
for m in $(findmnt -rn -o TARGET | grep -E "^/var/lib/$P-c[123](/|$)" | sort -r); do umount -l "$m"; done
rm -rf /var/lib/$P-c1 /var/lib/$P-c2 /var/lib/$P-c3 /var/lib/$P-lxcconf
for i in 1 2 3; do ip netns del "$P$i" 2>/dev/null; done
ip link del "${P}br0" 2>/dev/null
if [ -z "$(ip -4 -o addr show to "${N%.*}.0.0/16" 2>/dev/null)" ]; then
  ip route del unreachable "${N%.*}.0.0/16" 2>/dev/null
fi
[ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ] && { umount /run/netns 2>/dev/null; rmdir /run/netns; }
exit 0
