package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runImage(t *testing.T, root string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"--root", root}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

// The whole CLI round trip on a busybox image: build, list, info, export,
// re-import under another root, alias, delete.
func TestImageCLI(t *testing.T) {
	testenv.RequiresTool(t, "busybox")
	root := t.TempDir()
	out, errs, code := runImage(t, root, "--json", "image", "build", "--builder", "busybox", "--alias", "bb")
	require.Equal(t, ExitOK, code, errs)
	assert.Empty(t, errs, "--json: nothing but JSON")
	var built []images.Image
	require.NoError(t, json.Unmarshal([]byte(out), &built))
	require.Len(t, built, 1)
	fp := built[0].Fingerprint

	out, _, code = runImage(t, root, "image", "list")
	require.Equal(t, ExitOK, code)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	assert.Regexp(t, `^ALIAS\s+FINGERPRINT\s+DESCRIPTION\s+ARCH\s+SIZE\s+UPLOAD DATE\s+SOURCE$`, lines[0])
	assert.Regexp(t, `^bb\s+`+fp[:12]+`\s+BusyBox .*\s+`+images.HostArch()+`\s`, lines[1])

	for _, filter := range []string{"bb", fp[:6], "os=busybox"} {
		out, _, code = runImage(t, root, "--json", "image", "list", filter)
		require.Equal(t, ExitOK, code)
		assert.Contains(t, out, fp, "filter %s", filter)
	}
	out, _, code = runImage(t, root, "--json", "image", "list", "os=debian")
	require.Equal(t, ExitOK, code)
	assert.Equal(t, "[]\n", out)

	out, _, code = runImage(t, root, "image", "info", "bb")
	require.Equal(t, ExitOK, code)
	assert.Contains(t, out, "Fingerprint: "+fp)
	assert.Contains(t, out, "os: busybox")

	dir := t.TempDir()
	out, errs, code = runImage(t, root, "image", "export", "bb", dir)
	require.Equal(t, ExitOK, code, errs)
	exported := filepath.Join(dir, fp+".tar.gz")
	assert.Contains(t, out, exported)
	assert.Contains(t, errs, "100%", "plain progress lines when not a terminal")

	other := t.TempDir()
	out, _, code = runImage(t, other, "image", "import", exported, "--alias", "copy", "--fingerprint", fp)
	require.Equal(t, ExitOK, code)
	assert.Equal(t, "Image imported with fingerprint: "+fp+"\n", out)
	_, errs, code = runImage(t, other, "image", "import", exported, "--fingerprint", strings.Repeat("a", 64))
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errs, "fingerprint mismatch")

	_, _, code = runImage(t, root, "image", "alias", "add", "second", fp[:12])
	require.Equal(t, ExitOK, code)
	_, errs, code = runImage(t, root, "image", "alias", "add", "second", fp[:12])
	require.Equal(t, ExitOK, code, "same image again is fine: %s", errs)
	_, _, code = runImage(t, root, "image", "alias", "remove", "bb")
	require.Equal(t, ExitOK, code)
	_, errs, code = runImage(t, root, "image", "info", "bb")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errs, "not found")

	_, _, code = runImage(t, root, "image", "delete", "second")
	require.Equal(t, ExitOK, code)
	out, _, _ = runImage(t, root, "--json", "image", "list")
	assert.Equal(t, "[]\n", out)
}

func TestImageBuildSpec(t *testing.T) {
	testenv.RequiresTool(t, "busybox")
	dir := t.TempDir()
	specFile := filepath.Join(dir, "images.toml")
	require.NoError(t, os.WriteFile(specFile, []byte(`version = 1
[image.bb]
builder = "busybox"
properties = { description = "from a spec" }

[image.derived]
from = "bb"
`), 0o644))
	root := t.TempDir()
	out, errs, code := runImage(t, root, "image", "build", specFile, "bb")
	require.Equal(t, ExitOK, code, errs)
	assert.Regexp(t, `^bb: [0-9a-f]{64}\n$`, out)
	fp := strings.TrimSpace(strings.TrimPrefix(out, "bb: "))

	out, _, code = runImage(t, root, "image", "list", "description=from a spec")
	require.Equal(t, ExitOK, code)
	assert.Contains(t, out, "from a spec")

	// (Recipes, like "derived", build in a container: runner/recipe_test.go.)

	_, errs, code = runImage(t, root, "image", "build", specFile, "nope")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errs, "no [image.nope]")

	// source = an exported tarball: imported with the same fingerprint.
	_, errs, code = runImage(t, root, "image", "export", fp, dir)
	require.Equal(t, ExitOK, code, errs)
	imported := filepath.Join(dir, "imported.toml")
	require.NoError(t, os.WriteFile(imported, []byte("version = 1\n[image.imp]\nsource = \""+fp+".tar.gz\"\n"), 0o644))
	other := t.TempDir()
	out, errs, code = runImage(t, other, "image", "build", imported)
	require.Equal(t, ExitOK, code, errs)
	assert.Equal(t, "imp: "+fp+"\n", out)
}

func TestImagePruneCLI(t *testing.T) {
	testenv.RequiresTool(t, "busybox")
	root := t.TempDir()
	_, errs, code := runImage(t, root, "image", "build", "--builder", "busybox")
	require.Equal(t, ExitOK, code, errs)

	// Not expired and no --unused-for: kept.
	out, _, code := runImage(t, root, "image", "prune")
	require.Equal(t, ExitOK, code)
	assert.Empty(t, out)

	time.Sleep(10 * time.Millisecond)
	out, _, code = runImage(t, root, "image", "prune", "--unused-for", "1ms", "--dry-run")
	require.Equal(t, ExitOK, code)
	assert.Regexp(t, `^would delete [0-9a-f]{12} \n$`, out)
	out, _, code = runImage(t, root, "--json", "image", "prune", "--unused-for", "1ms")
	require.Equal(t, ExitOK, code)
	var pruned []images.Image
	require.NoError(t, json.Unmarshal([]byte(out), &pruned))
	assert.Len(t, pruned, 1)
	out, _, _ = runImage(t, root, "--json", "image", "list")
	assert.Equal(t, "[]\n", out)
}
