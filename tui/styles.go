package tui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// styles are the wizard's colours. Every state is also spelled out in text
// (markers such as ">" and "[x]", words such as "error"), so that the wizard
// reads the same under NO_COLOR, where lipgloss drops colours.
type styles struct {
	title, crumb, crumbOn, faint, selected, errText, warnText, okText, key, box lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	return styles{
		title:    r.NewStyle().Bold(true).Foreground(lipgloss.Color("12")),
		crumb:    r.NewStyle().Foreground(lipgloss.Color("8")),
		crumbOn:  r.NewStyle().Bold(true).Foreground(lipgloss.Color("14")),
		faint:    r.NewStyle().Foreground(lipgloss.Color("8")),
		selected: r.NewStyle().Bold(true).Foreground(lipgloss.Color("14")),
		errText:  r.NewStyle().Foreground(lipgloss.Color("9")),
		warnText: r.NewStyle().Foreground(lipgloss.Color("11")),
		okText:   r.NewStyle().Foreground(lipgloss.Color("10")),
		key:      r.NewStyle().Bold(true),
		box:      r.NewStyle().Border(lipgloss.NormalBorder()).BorderForeground(lipgloss.Color("8")).Padding(0, 1),
	}
}

// clip fits s into w columns and h lines: long lines are cut with an
// ellipsis, extra lines dropped, so that a small window never wraps.
func clip(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if h >= 0 && len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		if w > 0 && ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, "…")
		}
	}
	return strings.Join(lines, "\n")
}

// cell pads or cuts s to exactly w columns.
func cell(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if ansi.StringWidth(s) > w {
		return ansi.Truncate(s, w, "…")
	}
	return s + strings.Repeat(" ", w-ansi.StringWidth(s))
}
