package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/node/nodetest"
)

// TestBenchUpstreamVsUpstream runs the whole program in a tiny configuration, comparing upstream
// etcd with itself, and checks that the table has every row with real numbers.
func TestBenchUpstreamVsUpstream(t *testing.T) {
	etcd, _ := nodetest.Upstream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, progress bytes.Buffer
	args := []string{"-ours", etcd, "-upstream", etcd, "-ops", "200", "-watch-ops", "40", "-fill-keys", "900", "-data-root", t.TempDir()}
	if err := run(ctx, args, &out, &progress); err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("\n%s", out.String())

	rows := map[string][]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 6 || strings.HasPrefix(line, "-") {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[cells[0]] = cells[1:]
	}
	var want []string
	for _, c := range []string{"1 client", "64 clients"} {
		for _, op := range []string{"put", "linearizable range"} {
			want = append(want, op+" "+c+" (ops/s)", op+" "+c+" p50 (ms)", op+" "+c+" p99 (ms)")
		}
	}
	want = append(want, "put to watch event on a follower p50 (ms)", "put to watch event on a follower p99 (ms)")
	for _, role := range []string{"leader", "follower 1", "follower 2"} {
		want = append(want, "RSS idle, "+role+" (MiB)", "RSS after 900 keys, "+role+" (MiB)")
	}
	if len(rows) != len(want)+1 { // +1: the header
		t.Errorf("table has %d rows, want %d:\n%s", len(rows), len(want)+1, out.String())
	}
	for _, name := range want {
		cells, ok := rows[name]
		if !ok {
			t.Errorf("row %q missing", name)
			continue
		}
		for i, col := range []string{"etcd-node", "upstream etcd"} {
			if v, err := strconv.ParseFloat(cells[i], 64); err != nil || v <= 0 {
				t.Errorf("row %q, %s: %q is not a positive number", name, col, cells[i])
			}
		}
		if !strings.HasSuffix(cells[2], "x") {
			t.Errorf("row %q: ratio %q", name, cells[2])
		}
		if wantBetter := map[bool]string{true: "higher", false: "lower"}[strings.HasSuffix(name, "(ops/s)")]; cells[3] != wantBetter {
			t.Errorf("row %q: better = %q, want %q", name, cells[3], wantBetter)
		}
	}
	if !strings.Contains(out.String(), "keys written: 900 / 900") {
		t.Errorf("header lacks the key counts:\n%s", out.String())
	}
}

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-clients", "0"}, "not a positive count"},
		{[]string{"-clients", "1,x"}, "not a positive count"},
		{[]string{"-clients", ""}, "not a positive count"},
		{[]string{"-ops", "0"}, "set -ops or -duration"},
		{[]string{"-ops", "-1"}, "must not be negative"},
		{[]string{"-max-conns", "0"}, "-max-conns"},
		{[]string{"-fill-keys", "-5"}, "-fill-keys"},
		{[]string{"-watch-ops", "-1"}, "-watch-ops"},
		{[]string{"-rounds", "0"}, "-rounds"},
		{[]string{"-value-size", "0"}, "-value-size"},
		{[]string{"-nope"}, "flag provided but not defined"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-ours", "/nonexistent/etcd-node", "-upstream", "/nonexistent/etcd", "-ops", "1", "-data-root", "/nonexistent/dir"}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err := run(context.Background(), tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if err := run(context.Background(), []string{"-h"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestMissingBinaryIsReported(t *testing.T) {
	err := run(context.Background(), []string{"-ours", "/nonexistent/etcd-node", "-upstream", "/bin/true", "-ops", "1", "-data-root", t.TempDir()}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "etcd-node") || !strings.Contains(err.Error(), "/nonexistent/etcd-node") {
		t.Errorf("error %v, want it to name etcd-node and the binary", err)
	}
}

func TestLoadResult(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var d []time.Duration
		for _, v := range n {
			d = append(d, time.Duration(v)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		r             loadResult
		ops, p50, p99 float64
	}{
		{loadResult{ops: 4, elapsed: 2 * time.Second, latencies: ms(1, 2, 3, 4)}, 2, 2, 4},
		{loadResult{ops: 100, elapsed: time.Second, latencies: ms(make([]int, 100)...)}, 100, 0, 0},
		{loadResult{}, 0, 0, 0},
	}
	for i, tc := range tests {
		if got := tc.r.opsPerSec(); got != tc.ops {
			t.Errorf("%d: ops/s %v, want %v", i, got, tc.ops)
		}
		if got := tc.r.percentile(50); got != tc.p50 {
			t.Errorf("%d: p50 %v, want %v", i, got, tc.p50)
		}
		if got := tc.r.percentile(99); got != tc.p99 {
			t.Errorf("%d: p99 %v, want %v", i, got, tc.p99)
		}
	}
	// 1..100 ms: nearest rank gives exactly the 50th and 99th values.
	var hundred []int
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, i)
	}
	r := loadResult{latencies: ms(hundred...)}
	if r.percentile(50) != 50 || r.percentile(99) != 99 {
		t.Errorf("p50/p99 of 1..100 = %v/%v", r.percentile(50), r.percentile(99))
	}

	// Rounds merge into one phase: counts and times add up, percentiles cover all samples.
	m := loadResult{ops: 2, elapsed: time.Second, latencies: ms(5, 9)}.merge(loadResult{ops: 2, elapsed: time.Second, latencies: ms(1, 7)})
	if m.ops != 4 || m.opsPerSec() != 2 || !slices.Equal(m.latencies, ms(1, 5, 7, 9)) {
		t.Errorf("merge = %+v", m)
	}
}

func TestReportRejectsMismatchedRows(t *testing.T) {
	o := options{ops: 1, clients: []int{1}, maxConns: 16, valueSize: 256, rounds: 1}
	a := clusterResult{load: []metric{{name: "x", value: 1}}}
	b := clusterResult{load: []metric{{name: "y", value: 1}}}
	if err := writeReport(io.Discard, o, "a", "b", a, b); err == nil {
		t.Error("mismatched row names accepted")
	}
	if err := writeReport(io.Discard, o, "a", "b", a, clusterResult{}); err == nil {
		t.Error("mismatched row counts accepted")
	}
	var out bytes.Buffer
	zero := clusterResult{rss: []metric{{name: "x", value: 0}}}
	if err := writeReport(&out, o, "a", "b", a, zero); err != nil || !strings.Contains(out.String(), "n/a") {
		t.Errorf("zero upstream value: %v\n%s", err, out.String())
	}
}
