package results

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// pathColor gives each path one color in every chart.
var pathColor = map[string]color.Color{
	PathD: color.RGBA{R: 0x44, G: 0x77, B: 0xaa, A: 0xff},
	PathN: color.RGBA{R: 0xcc, G: 0x99, B: 0x33, A: 0xff},
	PathF: color.RGBA{R: 0xcc, G: 0x33, B: 0x44, A: 0xff},
}

var pathName = map[string]string{PathD: "D (Envoy only)", PathN: "N (do-nothing ext_proc)", PathF: "F (Tollgate)"}

// Charts writes the PNG charts into dir and returns their file names.
func Charts(dir string, r *Run, soak *Soak) ([]string, error) {
	var names []string
	for _, c := range []struct {
		name, workload string
		make           func() (*plot.Plot, error)
	}{
		{"w1-latency.png", "W1", func() (*plot.Plot, error) { return latencyChart(r, "W1") }},
		{"w1-cpu-per-request.png", "W1", func() (*plot.Plot, error) { return cpuChart(r, "W1") }},
		{"w3-latency.png", "W3", func() (*plot.Plot, error) { return latencyChart(r, "W3") }},
	} {
		if len(r.PathSteps(c.workload, PathD)) == 0 {
			continue // not measured in this run
		}
		p, err := c.make()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		if err := p.Save(9*vg.Inch, 5.5*vg.Inch, filepath.Join(dir, c.name)); err != nil {
			return nil, err
		}
		names = append(names, c.name)
	}
	if soak != nil && len(soak.Timeline) > 0 {
		p, err := soakChart(soak)
		if err != nil {
			return nil, err
		}
		if err := p.Save(9*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, "soak-rss.png")); err != nil {
			return nil, err
		}
		names = append(names, "soak-rss.png")
	}
	return names, nil
}

// latencyChart plots p50 (solid) and p99 (dashed) latency against the offered rate, one
// color per path, on a log scale.
func latencyChart(r *Run, workload string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = workload + ": latency vs offered rate (p50 solid, p99 dashed)"
	p.X.Label.Text = "offered rate (req/s)"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	for _, path := range PathOrder {
		pts := r.PathSteps(workload, path)
		if len(pts) == 0 {
			continue
		}
		for i, q := range []struct {
			name string
			get  func(Percentiles) float64
		}{{"p50", func(x Percentiles) float64 { return x.P50 }}, {"p99", func(x Percentiles) float64 { return x.P99 }}} {
			xy := make(plotter.XYs, 0, len(pts))
			for _, rp := range pts {
				xy = append(xy, plotter.XY{X: rp.Rate, Y: max(q.get(rp.Result.Latency), 0.01)})
			}
			l, s, err := plotter.NewLinePoints(xy)
			if err != nil {
				return nil, err
			}
			l.Color, s.Color = pathColor[path], pathColor[path]
			l.Width = vg.Points(1.5)
			if i == 1 {
				l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
				s.Shape = draw.BoxGlyph{}
			}
			p.Add(l, s)
			p.Legend.Add(pathName[path]+" "+q.name, l, s)
		}
	}
	if r.Settings.KneeP99Ms > 0 {
		knee, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: r.Settings.KneeP99Ms}, {X: p.X.Max, Y: r.Settings.KneeP99Ms}})
		if err != nil {
			return nil, err
		}
		knee.Color = color.Gray{Y: 0x80}
		knee.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(knee)
		p.Legend.Add(fmt.Sprintf("knee: p99 %g ms", r.Settings.KneeP99Ms), knee)
	}
	p.Y.Max *= 20 // room for the legend above the lines
	return p, nil
}

// cpuChart plots CPU per request against the offered rate: Envoy on each path, Tollgate
// on F, the do-nothing server on N.
func cpuChart(r *Run, workload string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = workload + ": CPU per request (µs) vs offered rate"
	p.X.Label.Text = "offered rate (req/s)"
	p.Y.Label.Text = "CPU µs per completed request"
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	series := []struct {
		path, proc, label string
		dashed            bool
	}{
		{PathD, ProcEnvoy, "Envoy on D", false},
		{PathN, ProcEnvoy, "Envoy on N", false},
		{PathF, ProcEnvoy, "Envoy on F", false},
		{PathN, ProcNoop, "do-nothing server on N", true},
		{PathF, ProcTollgate, "Tollgate on F", true},
	}
	for _, s := range series {
		pts := r.PathSteps(workload, s.path)
		xy := make(plotter.XYs, 0, len(pts))
		for _, rp := range pts {
			if rp.Result.OK > 0 {
				xy = append(xy, plotter.XY{X: rp.Rate, Y: rp.Result.CPUPerRequest(s.proc)})
			}
		}
		if len(xy) == 0 {
			continue
		}
		l, pt, err := plotter.NewLinePoints(xy)
		if err != nil {
			return nil, err
		}
		l.Color, pt.Color = pathColor[s.path], pathColor[s.path]
		l.Width = vg.Points(1.5)
		if s.dashed {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			pt.Shape = draw.BoxGlyph{}
		}
		p.Add(l, pt)
		p.Legend.Add(s.label, l, pt)
	}
	p.Y.Min = 0
	target, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: 100}, {X: p.X.Max, Y: 100}})
	if err != nil {
		return nil, err
	}
	target.Color = color.Gray{Y: 0x80}
	target.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	p.Add(target)
	p.Legend.Add("target: Tollgate 100 µs at saturation", target)
	return p, nil
}

// soakChart plots resident memory over the soak.
func soakChart(s *Soak) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Soak: resident memory with %d concurrent streams through F", s.Streams)
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "RSS (MiB)"
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	for _, proc := range []struct {
		name string
		c    color.Color
	}{{ProcTollgate, pathColor[PathF]}, {ProcEnvoy, pathColor[PathD]}} {
		xy := make(plotter.XYs, 0, len(s.Timeline))
		for _, t := range s.Timeline {
			xy = append(xy, plotter.XY{X: t.T, Y: float64(t.RSS[proc.name]) / (1 << 20)})
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return nil, err
		}
		l.Color = proc.c
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(proc.name, l)
	}
	p.Y.Min = 0
	p.Y.Max *= 1.25 // room for the legend
	return p, nil
}
