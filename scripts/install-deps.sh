#!/usr/bin/env bash
# Installs the Debian packages stint needs, idempotently and without questions.
# Run as root. Packages already present are not touched, so a second run is quick.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

pkgs=(
  lxc lxc-dev pkg-config gcc make     # liblxc and go-lxc's cgo build
  uidmap                              # newuidmap/newgidmap, /etc/subuid tooling
  btrfs-progs e2fsprogs util-linux    # btrfs pools on loop files, losetup, mkfs
  busybox-static                      # the offline busybox image builder
  debootstrap                         # the debootstrap image builder
  lxd squashfs-tools                   # image interop tests with real LXD; split images with squashfs rootfs
  docker-registry skopeo              # OCI pull tests: a CNCF distribution registry on loopback, pushed to with skopeo
  xz-utils zstd gzip tar              # image tarballs
  iproute2 nftables                   # inspection in network tests
  time                                # make bench: /usr/bin/time for stint's peak RSS
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go: the project needs 1.26; say so clearly rather than failing in the compiler.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH=$PATH:/usr/local/go/bin
fi
command -v go >/dev/null 2>&1 || { echo "install-deps: Go 1.26 is required (not found on PATH)" >&2; exit 1; }
