package timing

import (
	"fmt"
	"strings"
)

// RelationsMarkdown renders the ranges and relations Validate checks as
// the Markdown tables of docs/config.md (config's documentation test keeps
// that file in step with it).
func RelationsMarkdown() string {
	var b strings.Builder
	b.WriteString("| Rule | Why |\n|---|---|\n")
	for _, r := range timingBounds {
		rule := fmt.Sprintf("`%s` ≥ %s", r.field, durString(r.min))
		why := r.whyMin
		if r.max != 0 {
			rule = fmt.Sprintf("%s ≤ `%s` ≤ %s", durString(r.min), r.field, durString(r.max))
			why = strings.TrimSuffix(r.whyMin, ".") + "; " + r.whyMax
		}
		fmt.Fprintf(&b, "| %s | %s. |\n", rule, upperFirst(why))
	}
	for _, r := range timingRelations {
		if r.derived {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s |\n", r.rule, r.why)
	}
	b.WriteString("\nChecked when those hold, the relations between derived timeouts that the\nquorum package's safety and liveness arguments rely on (drift is\n`config.MaxClockDrift`); with the formulas of `config.Derived` they follow\nfrom the rules above, and the check guards the formulas:\n\n")
	b.WriteString("| Relation | Why |\n|---|---|\n")
	for _, r := range timingRelations {
		if r.derived {
			fmt.Fprintf(&b, "| %s | %s |\n", r.rule, r.why)
		}
	}
	return b.String()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
