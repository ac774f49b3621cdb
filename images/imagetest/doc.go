// Package imagetest holds the image fixtures that the tests of several
// packages share (images, images/oci, runner, cmd/stint): layer tarballs,
// OCI layouts, a real OCI registry on loopback (Debian's docker-registry,
// pushed to with skopeo) and LXD images restamped as newer versions. It is
// for tests only.
package imagetest
