package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Deleting (or pruning) an image destroys the golden volumes its jobs made
// (and their read-only mounts), and refuses while a container is cloned
// from one.
func TestImageDeleteGoldens(t *testing.T) {
	bin, dir := builtStint(t)
	root := filepath.Join(dir, "root")
	stint := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), errb.String(), ee.ExitCode()
		}
		require.NoError(t, err, "%s", errb.String())
		return out.String(), errb.String(), 0
	}
	ctx := context.Background()
	openStorage := func() storage.Driver {
		t.Helper()
		drv, err := storage.Open(ctx, storage.Config{Driver: "auto", Root: root})
		require.NoError(t, err)
		t.Cleanup(func() { drv.Close() })
		return drv
	}
	volumes := func(drv storage.Driver) []storage.Volume {
		t.Helper()
		var vs []storage.Volume
		require.NoError(t, drv.Walk(ctx, func(v storage.Volume) error { vs = append(vs, v); return nil }))
		return vs
	}
	t.Cleanup(func() {
		// Whatever the test left (clones first: Walk lists goldens first),
		// so that the temporary root can be removed.
		drv, err := storage.Open(ctx, storage.Config{Driver: "auto", Root: root})
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer drv.Close()
		vs := volumes(drv)
		for i := len(vs) - 1; i >= 0; i-- {
			if err := drv.Destroy(ctx, vs[i].ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})

	spec := filepath.Join(dir, "job.toml")
	require.NoError(t, os.WriteFile(spec, []byte("version = 1\n[image.bb]\nbuilder = \"busybox\"\n[job.hello]\nimage = \"bb\"\nrun = [\"true\"]\n"), 0o644))
	_, errs, code := stint("run", spec)
	require.Equal(t, ExitOK, code, errs)
	out, _, code := stint("--json", "image", "list")
	require.Equal(t, ExitOK, code)
	var imgs []images.Image
	require.NoError(t, json.Unmarshal([]byte(out), &imgs))
	require.Len(t, imgs, 1)
	fp := imgs[0].Fingerprint

	drv := openStorage()
	vs := volumes(drv)
	require.Len(t, vs, 1, "the job's golden volume, its clone gone: %+v", vs)
	golden := vs[0]
	assert.Equal(t, storage.KindGolden, golden.Kind)
	assert.True(t, strings.HasPrefix(golden.ID, "golden-"+fp[:32]+"-"), golden.ID)

	// A container cloned from the golden (as a long-lived one is) keeps the
	// image: delete refuses, naming it, and deletes nothing.
	_, err := drv.Clone(ctx, golden.ID, "held-by-app")
	require.NoError(t, err)
	_, errs, code = stint("image", "delete", fp[:12])
	assert.Equal(t, ExitUsage, code, errs)
	assert.Contains(t, errs, "held-by-app")
	assert.Contains(t, errs, golden.ID)
	out, _, _ = stint("--json", "image", "list")
	assert.Contains(t, out, fp, "the image stays")
	assert.Len(t, volumes(drv), 2, "both volumes stay")
	// Prune keeps it too (1ns, and its use a day ago: every image is long
	// unused), and says why.
	ageIndex(t, root)
	_, errs, code = stint("image", "prune", "--unused-for", "1ns")
	assert.Equal(t, ExitOK, code, errs)
	assert.Contains(t, errs, "kept "+fp[:12])
	assert.Contains(t, errs, "held-by-app")
	assert.Len(t, volumes(drv), 2, "both volumes stay")
	require.NoError(t, drv.Destroy(ctx, "held-by-app"))

	// Unused, prune removes image and golden volume.
	ageIndex(t, root)
	out, errs, code = stint("image", "prune", "--unused-for", "1ns")
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, "deleted "+fp[:12])
	assert.Empty(t, volumes(drv), "prune destroyed the golden volume")
	assert.Empty(t, mountsUnder(t, root), "no mount left under the root")

	// A job makes image and golden again; delete removes both.
	_, errs, code = stint("run", spec)
	require.Equal(t, ExitOK, code, errs)
	require.Len(t, volumes(drv), 1)
	_, errs, code = stint("image", "delete", fp[:12])
	require.Equal(t, ExitOK, code, errs)
	out, _, _ = stint("--json", "image", "list")
	assert.Equal(t, "[]\n", out)
	assert.Empty(t, volumes(openStorage()), "the golden volume is gone")
	assert.Empty(t, mountsUnder(t, root), "no mount left under the root")
}

// mountsUnder lists this mount namespace's mount points under dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	require.NoError(t, err)
	defer f.Close()
	var under []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			under = append(under, fields[4])
		}
	}
	require.NoError(t, sc.Err())
	return under
}
