package bench

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WritePlot draws res as a PNG at path: latency per second (p50, p99,
// max), completed operations per second, and the latency distribution as
// a percentile plot (latency against 1/(1-q) on a log axis, the usual HDR
// histogram view, so the tail gets as much room as the median).
func (res *Result) WritePlot(path, title string) error {
	if res.dist == nil || res.dist.TotalCount() == 0 {
		return fmt.Errorf("bench: nothing to plot: no successful operation")
	}
	if title == "" {
		title = res.Workload
	}
	overTime, err := res.latencyOverTime(title)
	if err != nil {
		return err
	}
	throughput := res.throughputOverTime()
	dist := res.distribution()

	img := vgimg.New(9*vg.Inch, 11*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 3, Cols: 1, PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3,
		PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 9, PadY: vg.Millimeter * 6}
	plots := [][]*plot.Plot{{overTime}, {throughput}, {dist}}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: writing %s: %w", path, err)
	}
	return nil
}

var (
	colP50 = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colP99 = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	colMax = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

func (res *Result) latencyOverTime(title string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: %.0f ops/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms",
		title, res.Throughput, res.Latency.P50, res.Latency.P99, res.Latency.P999, res.Latency.Max)
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "latency (ms, log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	p.Legend.Top = true
	p.Legend.Left = true
	series := []struct {
		name string
		col  color.Color
		get  func(Point) float64
	}{
		{"max", colMax, func(pt Point) float64 { return pt.Max }},
		{"p99", colP99, func(pt Point) float64 { return pt.P99 }},
		{"p50", colP50, func(pt Point) float64 { return pt.P50 }},
	}
	for _, s := range series {
		var xys plotter.XYs
		for _, pt := range res.Series {
			// A log axis cannot show 0: seconds without a completion
			// are left out, the histogram floor is 1 µs.
			if v := s.get(pt); pt.Ops > 0 && v > 0 {
				xys = append(xys, plotter.XY{X: pt.Sec, Y: v})
			}
		}
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("bench: plot: %w", err)
		}
		l.Color = s.col
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	p.Add(plotter.NewGrid())
	return p, nil
}

func (res *Result) throughputOverTime() *plot.Plot {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("throughput (completions per %.1f s window, as a rate)", res.WindowSec)
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "ops/s"
	var xys plotter.XYs
	for _, pt := range res.Series {
		xys = append(xys, plotter.XY{X: pt.Sec, Y: pt.PerSec})
	}
	if len(xys) > 0 {
		if l, err := plotter.NewLine(xys); err == nil {
			l.Color = colP50
			p.Add(l)
		}
	}
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	return p
}

func (res *Result) distribution() *plot.Plot {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("latency distribution (%d samples)", res.dist.TotalCount())
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms)"
	p.X.Scale = plot.LogScale{}
	// x = 1/(1-q): 1 is the median's left end (0%), 10 is 90%, 100 is 99%...
	maxExp := math.Log10(float64(res.dist.TotalCount()))
	if maxExp < 1 {
		maxExp = 1
	}
	var ticks []plot.Tick
	labels := []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"}
	for e := 0; e < len(labels) && float64(e) <= math.Ceil(maxExp); e++ {
		ticks = append(ticks, plot.Tick{Value: math.Pow(10, float64(e)), Label: labels[e]})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	var xys plotter.XYs
	for e := 0.0; e <= maxExp+1e-9; e += 0.02 {
		q := 1 - math.Pow(10, -e)
		xys = append(xys, plotter.XY{X: math.Pow(10, e), Y: float64(res.dist.ValueAtQuantile(q*100)) / 1000})
	}
	if l, err := plotter.NewLine(xys); err == nil {
		l.Color = colP99
		l.Width = vg.Points(1.5)
		p.Add(l)
	}
	p.Add(plotter.NewGrid())
	return p
}

// logTicks labels 1, 2 and 5 times each power of ten in range, so a log
// axis spanning less than a decade still has labels.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	if lo <= 0 || hi <= lo {
		return ticks
	}
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v < lo || v > hi {
				continue
			}
			ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
		}
	}
	return ticks
}
