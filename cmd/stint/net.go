package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/stintdev/stint/runner"
)

// NetCmd groups the network commands.
type NetCmd struct {
	Ls    NetLsCmd    `cmd:"" help:"List stint's bridges and the containers attached to them."`
	Prune NetPruneCmd `cmd:"" help:"Remove the bridges, firewall rules and files that no container uses."`
}

// NetLsCmd lists bridges and leases.
type NetLsCmd struct{}

// Run prints the network state.
func (NetLsCmd) Run(g *Globals) error {
	st, err := runner.Networks(context.Background(), g.Root)
	if err != nil {
		return withCode(ExitHost, err)
	}
	if g.JSON {
		return writeJSON(g.Stdout, st)
	}
	w := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "BRIDGE\tSUBNET\tGATEWAY\tCONTAINERS")
	for _, name := range netSortedKeys(st.Bridges) {
		b := st.Bridges[name]
		n := 0
		for _, l := range st.Leases {
			if l.Bridge == name {
				n++
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", b.Name, b.Subnet, b.Gateway, n)
	}
	if len(st.Leases) > 0 {
		fmt.Fprintln(w, "\nCONTAINER\tBRIDGE\tIPV4\tPORTS")
		for _, c := range netSortedKeys(st.Leases) {
			l := st.Leases[c]
			var ports []string
			for _, p := range l.Ports {
				ports = append(ports, p.String())
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", l.Container, l.Bridge, l.IPv4, strings.Join(ports, ","))
		}
	}
	return w.Flush()
}

// NetPruneCmd removes unused bridges and rules.
type NetPruneCmd struct{}

// Run prunes and reports what went.
func (NetPruneCmd) Run(g *Globals) error {
	ctx := context.Background()
	before, err := runner.Networks(ctx, g.Root)
	if err != nil {
		return withCode(ExitHost, err)
	}
	if err := runner.PruneNetworks(ctx, g.Root); err != nil {
		return withCode(ExitHost, err)
	}
	after, err := runner.Networks(ctx, g.Root)
	if err != nil {
		return withCode(ExitHost, err)
	}
	removed := []string{}
	for _, name := range netSortedKeys(before.Bridges) {
		if _, ok := after.Bridges[name]; !ok {
			removed = append(removed, name)
		}
	}
	if g.JSON {
		return writeJSON(g.Stdout, map[string][]string{"removed_bridges": removed})
	}
	for _, name := range removed {
		fmt.Fprintf(g.Stdout, "removed bridge %s\n", name)
	}
	for _, name := range netSortedKeys(after.Bridges) {
		fmt.Fprintf(g.Stdout, "kept bridge %s: in use\n", name)
	}
	return nil
}

func netSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
