// Package lxdtest holds the interoperability tests of stint's image store
// with a real LXD (Debian's lxd 5.0.2): images move both ways between them
// with the same fingerprint, and LXD boots a stint-built image. The tests
// need root and lxd; they start LXD (and stop it again) when it is not
// running, and initialise it with a dir storage pool and no network when it
// has never been initialised.
package lxdtest
