package main

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// TestCheckJSON runs `stint check --json` on this host: every driver is
// reported, the ones that can't work say why, dir always works, and the
// exit code follows the report.
func TestCheckJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"--root", t.TempDir(), "check", "--json"}, &stdout, &stderr)
	var r checkReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout.String())
	}
	if want := map[bool]int{true: ExitOK, false: ExitHost}[r.OK]; code != want {
		t.Errorf("exit code %d with ok=%v, want %d (stderr %q)", code, r.OK, want, stderr.String())
	}
	got := map[string]bool{}
	for _, p := range r.Storage {
		got[p.Driver] = p.OK
		if !p.OK && p.Reason == "" {
			t.Errorf("driver %s: not usable, but no reason given", p.Driver)
		}
	}
	for _, d := range []string{"btrfs", "overlay", "dir", "zfs", "lvm"} {
		if _, ok := got[d]; !ok {
			t.Errorf("driver %s missing from the report", d)
		}
	}
	if !got["dir"] {
		t.Error("dir reported unusable")
	}
	if _, err := os.Stat("/dev/zfs"); err != nil && got["zfs"] {
		t.Error("zfs reported usable on a host without /dev/zfs")
	}
	if r.Auto == "" || !got[r.Auto] {
		t.Errorf("auto picks %q, which is not a usable driver", r.Auto)
	}
	names := map[string]bool{}
	for _, c := range r.Checks {
		names[c.Group+"/"+c.Name] = true
	}
	for _, n := range []string{"lxc/liblxc", "namespaces/user", "namespaces/pid", "namespaces/net", "namespaces/mnt", "cgroups/hierarchy", "idmap/root subuid/subgid"} {
		if !names[n] {
			t.Errorf("check %s missing from the report", n)
		}
	}
}
