package reconcile

import (
	"fmt"
	"io"
	"strings"
)

// Symbols of the text rendering, after terraform plan's.
var symbols = map[Kind]string{
	KindCreate:   "+",
	KindDelete:   "-",
	KindRecreate: "-/+",
	KindUpdate:   "~",
	KindRestart:  "~>",
	KindStart:    ">",
	KindStop:     "<",
}

// Summary counts a plan's actions by kind.
type Summary struct {
	Create   int `json:"create"`
	Update   int `json:"update"`
	Restart  int `json:"restart"`
	Recreate int `json:"recreate"`
	Delete   int `json:"delete"`
	Start    int `json:"start"`
	Stop     int `json:"stop"`
	Nothing  int `json:"unchanged"`
}

// Changes is the number of actions that change something.
func (s Summary) Changes() int {
	return s.Create + s.Update + s.Restart + s.Recreate + s.Delete + s.Start + s.Stop
}

// Summarize counts actions by kind.
func Summarize(actions []Action) Summary {
	var s Summary
	for _, a := range actions {
		switch a.Kind {
		case KindCreate:
			s.Create++
		case KindUpdate:
			s.Update++
		case KindRestart:
			s.Restart++
		case KindRecreate:
			s.Recreate++
		case KindDelete:
			s.Delete++
		case KindStart:
			s.Start++
		case KindStop:
			s.Stop++
		default:
			s.Nothing++
		}
	}
	return s
}

// PlanReport is a plan as `stint plan --json` prints it.
type PlanReport struct {
	Set     string   `json:"set"`
	Changes bool     `json:"changes"`
	Summary Summary  `json:"summary"`
	Actions []Action `json:"actions"` // every container, unchanged ones with action "none"
}

// NewPlanReport wraps actions for JSON output.
func NewPlanReport(set string, actions []Action) PlanReport {
	s := Summarize(actions)
	if actions == nil {
		actions = []Action{}
	}
	return PlanReport{Set: set, Changes: s.Changes() > 0, Summary: s, Actions: actions}
}

// WriteText renders actions like terraform plan: one line per changing
// container with its symbol, its reasons indented below, and a summary.
func WriteText(w io.Writer, set string, actions []Action) error {
	var b strings.Builder
	s := Summarize(actions)
	if s.Changes() == 0 {
		noun := "containers" // reconcile imports spec only: no plural helper
		if s.Nothing == 1 {
			noun = "container"
		}
		fmt.Fprintf(&b, "No changes: set %q matches its specs (%d %s).\n", set, s.Nothing, noun)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "Set %q:\n", set)
	for _, a := range actions {
		if !a.Changes() {
			continue
		}
		fmt.Fprintf(&b, "  %-3s %s (%s)\n", symbols[a.Kind], a.Name, a.Kind)
		for _, r := range a.Reasons {
			fmt.Fprintf(&b, "        %s\n", r)
		}
	}
	fmt.Fprintf(&b, "\nPlan: %d to create, %d to update, %d to restart, %d to recreate, %d to delete, %d to start, %d to stop.\n",
		s.Create, s.Update, s.Restart, s.Recreate, s.Delete, s.Start, s.Stop)
	_, err := io.WriteString(w, b.String())
	return err
}
