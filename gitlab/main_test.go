package gitlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInvocationMain drives Invocation.Main as cmd/stint will: through the
// environment the runner sets, one process per subcommand.
func TestInvocationMain(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "gitlab.toml")
	if err := os.WriteFile(cfgFile, []byte("root = \""+dir+"\"\ndefault_image = \"busybox\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "script")
	_ = os.WriteFile(script, []byte("#!/usr/bin/env sh\nexit 3\n"), 0o700)
	eng := newFake()
	opens := 0
	environ := []string{"BUILD_FAILURE_EXIT_CODE=1", "SYSTEM_FAILURE_EXIT_CODE=2",
		"BUILD_EXIT_CODE_FILE=" + filepath.Join(dir, "build_exit_code"), "CUSTOM_ENV_CI_RUNNER_ID=12",
		"CUSTOM_ENV_CI_PROJECT_ID=34", "CUSTOM_ENV_CI_CONCURRENT_PROJECT_ID=0", "CUSTOM_ENV_CI_JOB_ID=5678",
		"CUSTOM_ENV_CI_SERVER_URL=https://gitlab.example.com", "CUSTOM_ENV_CI_JOB_SERVICES="}
	main := func(sub, cfg string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		inv := Invocation{Sub: sub, Args: args, ConfigFile: cfg, Environ: environ, Stdout: &out, Stderr: &errb, RecordsDir: testRecordsDir,
			Version: "0.1.0", Proc: fakeProcFS(t, proc{300, 100, 300, 9, nil}, proc{100, 1, 100, 5, nil}),
			Open: func(context.Context, *Config) (Engine, func() error, error) {
				opens++
				return eng, func() error { return nil }, nil
			}}
		return inv.Main(context.Background()), out.String(), errb.String()
	}
	code, out, _ := main(SubConfig, cfgFile)
	var co map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &co) != nil || co["hostname"] != jobName || opens != 0 {
		t.Fatalf("config: %d %q (engine opened %d times)", code, out, opens)
	}
	if code, out, _ = main(SubPrepare, cfgFile); code != 0 || !strings.Contains(out, "preparing "+jobName) {
		t.Fatalf("prepare: %d %q", code, out)
	}
	eng.execCode = 3 // the fake's script exits 3
	code, _, errOut := main(SubRun, cfgFile, script, "build_script")
	if b, _ := os.ReadFile(filepath.Join(dir, "build_exit_code")); code != 1 || string(b) != "3\n" || errOut != "" {
		t.Fatalf("run: %d, exit code file %q, stderr %q", code, b, errOut)
	}
	if code, _, _ = main(SubCleanup, cfgFile); code != 0 || len(eng.live) != 0 {
		t.Fatalf("cleanup: %d, left %v", code, eng.live)
	}
	if _, err := os.Stat(filepath.Join(testRecordsDir(dir), jobName+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record left: %v", err)
	}
	for _, c := range []struct {
		sub, cfg string
		args     []string
		stderr   string
	}{
		{SubRun, cfgFile, []string{script}, "usage"},
		{"destroy", cfgFile, nil, "usage"},
		{SubPrepare, "", nil, "usage"},
		{SubPrepare, filepath.Join(dir, "missing.toml"), nil, "read driver config"},
		{SubConfig, "testdata/config/unknown_keys.toml", nil, "unknown key"},
	} {
		code, _, errOut := main(c.sub, c.cfg, c.args...)
		if code != 2 || !strings.Contains(errOut, c.stderr) {
			t.Errorf("%s %v --config %q: exit %d, stderr %q; want 2 and %q", c.sub, c.args, c.cfg, code, errOut, c.stderr)
		}
	}
}

// testRecordsDir stands in for runner.Layout.GitLabJobs.
func testRecordsDir(root string) string { return filepath.Join(root, "gitlab", "jobs") }
