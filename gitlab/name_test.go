package gitlab

import (
	"errors"
	"regexp"
	"testing"
)

func ids(runner, project, conc, job string) map[string]string {
	return map[string]string{VarRunnerID: runner, VarProjectID: project, VarConcurrentProjectID: conc,
		VarJobID: job, VarServerURL: "https://gitlab.example.com"}
}

func TestContainerName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	cases := []struct {
		vars map[string]string
		want string
	}{
		{ids("12", "34", "0", "5678"), "gitlab-dfe2ee-r12-p34-c0-j5678"},
		{ids("13", "34", "0", "5678"), "gitlab-dfe2ee-r13-p34-c0-j5678"}, // another runner, same job id
		{ids("12", "34", "1", "5678"), "gitlab-dfe2ee-r12-p34-c1-j5678"},
		{ids("18446744073709551615", "18446744073709551615", "7", "18446744073709551615"),
			"gitlab-dfe2ee-p18446744073709551615-j18446744073709551615"},
	}
	for _, c := range cases {
		got, err := ContainerName(c.vars)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("ContainerName(%v) = %q, want %q", c.vars, got, c.want)
		}
		if !valid.MatchString(got) || len(serviceName(got, 99)) > 63 {
			t.Errorf("%q (or its services' names) is no valid container/host name", got)
		}
	}
	other := ids("12", "34", "0", "5678")
	other[VarServerURL] = "https://gitlab.com"
	if a, _ := ContainerName(other); a == cases[0].want {
		t.Errorf("two GitLab instances' job 5678 share the name %s", a)
	}
	for _, bad := range []map[string]string{ids("", "34", "0", "1"), ids("12", "x", "0", "1"), ids("12", "34", "-1", "1"), {}} {
		if _, err := ContainerName(bad); !errors.Is(err, ErrNoJobIDs) {
			t.Errorf("ContainerName(%v): err = %v, want ErrNoJobIDs", bad, err)
		}
	}
}
