package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Result is what a workload measured. Its JSON form is what --json prints.
type Result struct {
	Workload  string   `json:"workload"`
	Unit      string   `json:"unit"` // what Ops counts: "ops", or "events" for watches
	Endpoints []string `json:"endpoints"`
	Conns     int      `json:"conns"`
	Clients   int      `json:"clients"`
	// Ops counts the operations of the headline kinds, successes plus
	// failures; Throughput is successful ones per second of the run.
	Ops         int64             `json:"ops"`
	Succeeded   int64             `json:"succeeded"`
	Failed      int64             `json:"failed"`
	Errors      map[string]int64  `json:"errors"`
	FirstErrors map[string]string `json:"first_errors,omitempty"`
	DurationSec float64           `json:"duration_sec"`
	Throughput  float64           `json:"throughput"`
	Latency     Latency           `json:"latency"`
	// Kinds breaks the run down by kind of operation when it has several
	// (mixed: put/get/delete/range; watch: create/put/event).
	Kinds []KindResult `json:"kinds,omitempty"`
	// Extra holds workload-specific counters (watchers, events expected).
	Extra map[string]float64 `json:"extra,omitempty"`
	// Series is the headline latency over the run, in windows of
	// WindowSec (0.1 s, doubled as often as needed to keep 600 or fewer).
	WindowSec float64 `json:"window_sec"`
	Series    []Point `json:"series"`

	dist *hdrhistogram.Histogram // headline histogram, for the plot
}

// Latency percentiles in milliseconds.
type Latency struct {
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	Count int64   `json:"count"`
}

// KindResult is one kind of operation of a run.
type KindResult struct {
	Kind       string           `json:"kind"`
	Succeeded  int64            `json:"succeeded"`
	Failed     int64            `json:"failed"`
	Errors     map[string]int64 `json:"errors,omitempty"`
	Throughput float64          `json:"throughput"`
	Latency    Latency          `json:"latency"`
}

// Point is one window of the run.
type Point struct {
	Sec    float64 `json:"sec"` // end of the window, since the start
	Ops    int64   `json:"ops"` // completed in the window
	PerSec float64 `json:"per_sec"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	Max    float64 `json:"max_ms"`
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Mean:  h.Mean() / 1000,
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
		Count: h.TotalCount(),
	}
}

// result closes the recorder and summarises it over elapsed.
func (r *recorder) result(workload string, o *Options, elapsed time.Duration) *Result {
	r.close()
	secs := elapsed.Seconds()
	if secs <= 0 {
		secs = 1e-9
	}
	res := &Result{
		Workload:    workload,
		Unit:        "ops",
		Endpoints:   o.Endpoints,
		Conns:       o.Conns,
		Clients:     o.Clients,
		Errors:      map[string]int64{},
		FirstErrors: r.firstErr,
		DurationSec: secs,
		dist:        hdrhistogram.New(histMinUs, histMaxUs, histSigFigs),
	}
	for i, kind := range r.kinds {
		var failed int64
		for k, n := range r.errs[i] {
			failed += n
			if r.primary[i] {
				res.Errors[k] += n
			}
		}
		if r.primary[i] {
			res.Succeeded += r.ok[i]
			res.Failed += failed
			res.dist.Merge(r.hists[i])
		}
		if len(r.kinds) > 1 {
			kr := KindResult{Kind: kind, Succeeded: r.ok[i], Failed: failed,
				Throughput: float64(r.ok[i]) / secs, Latency: latencyOf(r.hists[i])}
			if failed > 0 {
				kr.Errors = r.errs[i]
			}
			res.Kinds = append(res.Kinds, kr)
		}
	}
	res.Ops = res.Succeeded + res.Failed
	res.Throughput = float64(res.Succeeded) / secs
	res.Latency = latencyOf(res.dist)
	res.WindowSec = r.width.Seconds()
	for i, h := range r.windows {
		p := Point{Sec: float64(i+1) * res.WindowSec}
		if h != nil {
			l := latencyOf(h)
			p.Ops, p.P50, p.P99, p.Max = l.Count, l.P50, l.P99, l.Max
			p.PerSec = float64(l.Count) / res.WindowSec
		}
		res.Series = append(res.Series, p)
	}
	return res
}

// WriteText prints the result for a person.
func (res *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	unit := res.Unit
	if unit == "" {
		unit = "ops"
	}
	fmt.Fprintf(&b, "%s: %d ok, %d failed in %.2fs: %.1f %s/s (%d clients, %d conns, %s)\n",
		res.Workload, res.Succeeded, res.Failed, res.DurationSec, res.Throughput, unit,
		res.Clients, res.Conns, strings.Join(res.Endpoints, ","))
	writeLatency(&b, "latency", res.Latency)
	for _, k := range res.Kinds {
		fmt.Fprintf(&b, "  %-12s %d ok, %d failed, %.1f/s", k.Kind, k.Succeeded, k.Failed, k.Throughput)
		if len(k.Errors) > 0 {
			fmt.Fprintf(&b, " (%s)", errorList(k.Errors))
		}
		b.WriteString("\n")
		writeLatency(&b, "  "+k.Kind, k.Latency)
	}
	for _, k := range sortedExtra(res.Extra) {
		v := res.Extra[k]
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			fmt.Fprintf(&b, "%s: %.0f\n", k, v)
		} else {
			fmt.Fprintf(&b, "%s: %.1f\n", k, v)
		}
	}
	if res.Failed == 0 {
		b.WriteString("errors: 0\n")
	} else {
		fmt.Fprintf(&b, "errors: %d (%s)\n", res.Failed, errorList(res.Errors))
	}
	for _, k := range sortedKinds(toCounts(res.FirstErrors)) {
		fmt.Fprintf(&b, "  first %s: %s\n", k, res.FirstErrors[k])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeLatency(b *strings.Builder, label string, l Latency) {
	fmt.Fprintf(b, "%s (ms): p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f\n",
		label, l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
}

func errorList(m map[string]int64) string {
	var parts []string
	for _, k := range sortedKinds(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func toCounts(m map[string]string) map[string]int64 {
	c := make(map[string]int64, len(m))
	for k := range m {
		c[k] = 1
	}
	return c
}

func sortedExtra(m map[string]float64) []string {
	c := make(map[string]int64, len(m))
	for k := range m {
		c[k] = 1
	}
	return sortedKinds(c)
}

// WriteJSON prints the result as one JSON object.
func (res *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}
