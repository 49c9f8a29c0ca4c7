package main

import (
	"fmt"
	"io"
	"strings"
)

// writeReport prints the side-by-side table. ratio is etcd-node / upstream; "meets" says whether
// etcd-node is at least as good as upstream in the metric's better direction (DESIGN §7).
func writeReport(w io.Writer, o options, oursBin, upstreamBin string, ours, theirs clusterResult) error {
	om, tm := ours.metrics(), theirs.metrics()
	if len(om) != len(tm) {
		return fmt.Errorf("report: %d metrics for etcd-node, %d for upstream", len(om), len(tm))
	}
	limit := fmt.Sprintf("%d ops", o.ops)
	switch {
	case o.ops == 0:
		limit = o.duration.String()
	case o.duration > 0:
		limit += " or " + o.duration.String()
	}
	conns := make([]string, len(o.clients))
	for i, n := range o.clients {
		c := min(n, o.maxConns)
		conns[i] = fmt.Sprintf("%s on %d conn", clientsLabel(n), c)
		if c > 1 {
			conns[i] += "s"
		}
	}
	fmt.Fprintf(w, "etcd-node: %s\nupstream etcd: %s\n", oursBin, upstreamBin)
	fmt.Fprintf(w, "3 members each on 127.0.0.1, requests to the leader; 8-byte sequential keys, %d-byte values; %s per phase in %d alternating rounds; %s; keys written: %d / %d\n\n",
		o.valueSize, limit, o.rounds, strings.Join(conns, ", "), ours.keys, theirs.keys)

	rows := [][]string{{"metric", "etcd-node", "upstream etcd", "ratio", "better", "meets"}}
	for i, m := range om {
		t := tm[i]
		if t.name != m.name {
			return fmt.Errorf("report: row %d is %q for etcd-node but %q for upstream", i, m.name, t.name)
		}
		ratio, meets := "n/a", "n/a"
		if t.value > 0 {
			r := m.value / t.value
			ratio = fmt.Sprintf("%.2fx", r)
			meets = yesNo(r <= 1)
			if m.higher {
				meets = yesNo(r >= 1)
			}
		}
		better := "lower"
		if m.higher {
			better = "higher"
		}
		rows = append(rows, []string{m.name, format(m.value), format(t.value), ratio, better, meets})
	}
	_, err := io.WriteString(w, renderTable(rows))
	return err
}

// renderTable lays rows out as a '|' separated table: the first column (names) left-aligned,
// the others right-aligned, with a rule under the header.
func renderTable(rows [][]string) string {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], len(cell))
		}
	}
	var b strings.Builder
	for n, r := range rows {
		for i, cell := range r {
			if i > 0 {
				b.WriteString(" | ")
			}
			pad := strings.Repeat(" ", widths[i]-len(cell))
			if i == 0 {
				b.WriteString(cell + pad)
			} else {
				b.WriteString(pad + cell)
			}
		}
		b.WriteString("\n")
		if n == 0 {
			for i, wd := range widths {
				if i > 0 {
					b.WriteString("-|-")
				}
				b.WriteString(strings.Repeat("-", wd))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func format(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
