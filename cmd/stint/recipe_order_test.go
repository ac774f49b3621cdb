package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeAptGet stands in for apt-get in a busybox image: it logs how it was
// called and what it found in place at that moment.
const fakeAptGet = `#!/bin/sh
echo "apt-get $*" >> /var/log/order
test -e /etc/apt/sources.list.d/stint-vendor.sources && echo "  vendor source present" >> /var/log/order
test -e /etc/apt/keyrings/stint-vendor.asc && echo "  vendor key present" >> /var/log/order
test -e /etc/pinned && echo "  pre hook ran" >> /var/log/order
test -e /etc/motd.recipe && echo "  files already there" >> /var/log/order
exit 0
`

// TestCLIRecipeOrder, through the binary and offline: a recipe's
// repositories and hooks marked before = "packages" are in place before
// its packages are installed (by an apt-get that logs what it sees),
// without recommended packages when recommends = false; files and the
// other hooks come after.
func TestCLIRecipeOrder(t *testing.T) {
	f := newCLI(t)
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(f.dir, name), []byte(body), 0o644))
	}
	write("apt-get", fakeAptGet)
	write("install-apt.sh", "mkdir -p /usr/bin /var/log\ncp /etc/fake-apt-get /usr/bin/apt-get\nchmod 755 /usr/bin/apt-get\n")
	write("pin.sh", "echo pre >> /var/log/order\ntouch /etc/pinned\n")
	write("post.sh", "echo post >> /var/log/order\n")
	write("motd", "from files\n")
	write("vendor.asc", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nfixture\n-----END PGP PUBLIC KEY BLOCK-----\n")
	p := f.spec(t, `
[image.aptish]
from = "busybox"
files = { "/etc/fake-apt-get" = "apt-get" }
hooks = ["install-apt.sh"]

[image.top]
from = "aptish"
packages = ["hello"]
recommends = false
hooks = ["post.sh", { path = "pin.sh", before = "packages" }]
files = { "/etc/motd.recipe" = "motd" }

[image.top.repositories.vendor]
uri = "http://apt.example.org/debian"
suite = "bookworm"
components = ["main"]
key = "vendor.asc"

[job.check]
image = "top"
run = ["cat /var/log/order", "cat /etc/apt/sources.list.d/stint-vendor.sources", "ls -l /etc/apt/keyrings/stint-vendor.asc", "test ! -e /.stint-hooks"]
`)
	out, code := f.run(t, "-v", "run", p)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "[check] pre\n"+
		"[check] apt-get update\n"+
		"[check]   vendor source present\n"+
		"[check]   vendor key present\n"+
		"[check]   pre hook ran\n"+
		"[check] apt-get install -y --no-install-recommends hello\n"+
		"[check]   vendor source present\n"+
		"[check]   vendor key present\n"+
		"[check]   pre hook ran\n"+
		"[check] apt-get clean\n", "the order of the build, as apt-get saw it")
	assert.Contains(t, out, "[check] post\n")
	assert.NotContains(t, out, "files already there")
	assert.Contains(t, out, "[check] Types: deb\n[check] URIs: http://apt.example.org/debian\n[check] Suites: bookworm\n"+
		"[check] Components: main\n[check] Signed-By: /etc/apt/keyrings/stint-vendor.asc\n")
	assert.Regexp(t, `\[check\] -rw-r--r-- .* /etc/apt/keyrings/stint-vendor.asc`, out)
	assert.Contains(t, out, "[image top] + repository vendor to /etc/apt/sources.list.d/stint-vendor.sources")

	// The same recipe with the hook after the packages is another image.
	write("stint.toml", "")
	p = f.spec(t, `
[image.aptish]
from = "busybox"
files = { "/etc/fake-apt-get" = "apt-get" }
hooks = ["install-apt.sh"]

[image.top]
from = "aptish"
packages = ["hello"]
hooks = ["pin.sh", "post.sh"]

[job.check]
image = "top"
run = ["cat /var/log/order"]
`)
	out, code = f.run(t, "run", p)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "[check] apt-get install -y hello\n[check] apt-get clean\n[check] pre\n[check] post\n")
	f.assertClean(t)
}
