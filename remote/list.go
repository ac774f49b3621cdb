package remote

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// listEntry is a remote as `stint remote list --json` shows it: no
// certificate (it is long, and `remote add` pinned it already).
type listEntry struct {
	Name     string   `json:"name"`
	URL      string   `json:"url"`
	Protocol Protocol `json:"protocol"`
	Network  string   `json:"network,omitempty"`
	Insecure bool     `json:"insecure,omitempty"`
	Preset   bool     `json:"preset,omitempty"`
}

// WriteList writes remotes as `stint remote list` prints them: a table
// of NAME, URL, PROTOCOL (presets marked), or a JSON array with asJSON.
func WriteList(w io.Writer, remotes []Remote, asJSON bool) error {
	if asJSON {
		out := make([]listEntry, 0, len(remotes))
		for _, r := range remotes {
			out = append(out, listEntry{r.Name, r.URL, r.Protocol, r.Network, r.Insecure, r.Preset})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tURL\tPROTOCOL")
	for _, r := range remotes {
		name := r.Name
		if r.Preset {
			name += " (preset)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, r.URL, r.Protocol)
	}
	return tw.Flush()
}
