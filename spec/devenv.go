package spec

// The keys of a dev box (issue 17, docs/devenv.md): host_user on jobs,
// containers and profiles; home and ssh_agent on containers; workdir and
// user on containers (jobs had them).

var homeValues = []string{HomeImage, HomePersist}

// devKey decodes host_user, home and ssh_agent.
func (d *decoder) devKey(l *layer, k string, v any, p string) {
	switch k {
	case "host_user":
		l.hostUser = d.boolean(v, p)
	case "home":
		if s, ok := d.enum(v, p, homeValues...); ok {
			l.home = &s
		}
	case "ssh_agent":
		l.sshAgent = d.boolean(v, p)
	}
}

// devKeys sets a container's dev box keys from its merged layers, and
// checks that home = "persist" and ssh_agent have a host user to serve.
// Profiles' workdir and user apply to containers too.
func (lo *loader) devKeys(c *Container, m *layer, r *resolver) {
	if m.workdir != nil {
		c.Workdir = r.absolute(*m.workdir, "workdir")
	}
	if m.user != nil {
		c.User, _ = r.sub(*m.user)
	}
	c.HostUser = boolOf(m.hostUser)
	c.SSHAgent = boolOf(m.sshAgent)
	if m.home != nil && m.home.V != HomeImage {
		c.Home = m.home.V
	}
	if c.Home == HomePersist && !c.HostUser {
		lo.ps.addf(m.home.At, "set host_user = true", "home = %q keeps the host user's home: the container has no host user", HomePersist)
	}
	if c.SSHAgent && !c.HostUser {
		lo.ps.addf(m.sshAgent.At, "set host_user = true", "ssh_agent hands the host user's agent to them: the container has no host user")
	}
}
