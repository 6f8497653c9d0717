package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Image sizes. At vgimg's 96 dots per inch a 10 × 5.5 inch figure is
// 960 × 528 pixels.
const (
	figWidth  = 10 * vg.Inch
	figHeight = 5.5 * vg.Inch
	dpi       = vgimg.DefaultDPI
)

// pixels is the size in pixels of a length at dpi.
func pixels(l vg.Length) int { return int(l/vg.Inch*dpi + 0.5) }

// figure is one PNG: plots side by side, and one legend in a column to
// their right, so that it never covers data.
type figure struct {
	Width, Height vg.Length
	Panels        []*plot.Plot
	Legend        plot.Legend
}

func newFigure(panels ...*plot.Plot) *figure {
	l := plot.NewLegend()
	l.Top, l.Left = true, true
	l.TextStyle.Font.Size = vg.Points(10)
	l.Padding = vg.Points(2)
	l.ThumbnailWidth = vg.Points(28)
	return &figure{Width: figWidth, Height: figHeight, Panels: panels, Legend: l}
}

// newPlot returns a plot with a title, axis labels and a light grid.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(8)
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{Y: 225}
	g.Horizontal.Color = color.Gray{Y: 225}
	p.Add(g)
	return p
}

// writePNG draws the figure and writes it to path. The output depends only
// on the figure: no time or host goes into it.
func (f *figure) writePNG(path string) error {
	c := vgimg.NewWith(vgimg.UseWH(f.Width, f.Height), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(c)
	const pad = vg.Length(8)
	area := draw.Crop(dc, pad, -pad, pad, -pad)
	r := f.Legend.Rectangle(area)
	if lw := r.Max.X - r.Min.X; lw > 0 {
		legendArea := draw.Crop(area, area.Max.X-area.Min.X-lw, 0, 0, -vg.Points(28))
		f.Legend.Draw(legendArea)
		area = draw.Crop(area, 0, -lw-2*pad, 0, 0)
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(f.Panels), PadX: 3 * pad}
	for i, p := range f.Panels {
		p.Draw(tiles.At(area, i, 0))
	}
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("benchplot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(out); err != nil {
		out.Close()
		return fmt.Errorf("benchplot: writing %s: %w", path, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("benchplot: %w", err)
	}
	return nil
}

// palette is Tableau's ten colours, distinct on white and for most colour
// vision deficiencies.
var palette = []color.Color{
	color.RGBA{31, 119, 180, 255},
	color.RGBA{255, 127, 14, 255},
	color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255},
	color.RGBA{148, 103, 189, 255},
	color.RGBA{140, 86, 75, 255},
	color.RGBA{227, 119, 194, 255},
	color.RGBA{127, 127, 127, 255},
	color.RGBA{188, 189, 34, 255},
	color.RGBA{23, 190, 207, 255},
}

func colorOf(i int) color.Color { return palette[i%len(palette)] }

var glyphs = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.RingGlyph{},
	draw.BoxGlyph{}, draw.PyramidGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{},
}

func glyphOf(i int) draw.GlyphDrawer { return glyphs[i%len(glyphs)] }

// Dash patterns: solid data, dashed baselines, dotted targets.
var (
	solid  []vg.Length
	dashed = []vg.Length{vg.Points(7), vg.Points(4)}
	dotted = []vg.Length{vg.Points(1.5), vg.Points(3)}
	dashes = [][]vg.Length{solid, dashed, {vg.Points(3), vg.Points(2)}, {vg.Points(8), vg.Points(2), vg.Points(2), vg.Points(2)}}
)

// style is how one line is drawn.
type style struct {
	Color  color.Color
	Dashes []vg.Length
	Glyph  draw.GlyphDrawer // nil: no points
}

// addLine adds a line through xys (with a glyph at each point) and its
// legend entry. Points with a non-finite or, on a log axis, non-positive
// coordinate are left out.
func (f *figure) addLine(p *plot.Plot, name string, xys plotter.XYs, st style, legend bool) {
	xys = slices.DeleteFunc(slices.Clone(xys), func(xy plotter.XY) bool {
		return !plottable(p.X, xy.X) || !plottable(p.Y, xy.Y)
	})
	if len(xys) == 0 {
		return
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		panic(err) // xys holds finite values only
	}
	l.Color = st.Color
	l.Width = vg.Points(1.6)
	l.Dashes = st.Dashes
	p.Add(l)
	thumbs := []plot.Thumbnailer{l}
	if st.Glyph != nil {
		s, err := plotter.NewScatter(xys)
		if err != nil {
			panic(err)
		}
		s.Color = st.Color
		s.Shape = st.Glyph
		s.Radius = vg.Points(3)
		p.Add(s)
		thumbs = append(thumbs, s)
	}
	if legend {
		f.Legend.Add(name, thumbs...)
	}
}

// plottable reports whether v can be drawn on axis a.
func plottable(a plot.Axis, v float64) bool {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	_, log := a.Scale.(plot.LogScale)
	return !log || v > 0
}

// logAxis makes a a log axis with labels at 1, 2 and 5 times powers of ten,
// its range widened to such values around [lo, hi] so that at least two
// labels show.
func logAxis(a *plot.Axis, lo, hi float64, format func(float64) string) {
	a.Scale = plot.LogScale{}
	a.Tick.Marker = logTicks{format: format}
	if lo > 0 && hi >= lo {
		a.Min, a.Max = nice125(lo, false), nice125(hi, true)
		if a.Min == a.Max {
			a.Max = nice125(a.Max*1.01, true)
		}
	}
}

// valueAxis makes a a log axis labelled at the data values xs (such as
// concurrency 1, 2, 4, … 128).
func valueAxis(a *plot.Axis, xs []float64) {
	a.Scale = plot.LogScale{}
	var ticks plot.ConstantTicks
	for _, x := range xs {
		ticks = append(ticks, plot.Tick{Value: x, Label: formatNumber(x)})
	}
	a.Tick.Marker = ticks
	lo, hi := slices.Min(xs), slices.Max(xs)
	if lo == hi {
		lo, hi = lo/2, hi*2
	}
	// A little room so that the first and last glyphs are whole.
	a.Min, a.Max = lo/math.Pow(hi/lo, 0.03), hi*math.Pow(hi/lo, 0.03)
}

// nice125 rounds v > 0 down (or up) to 1, 2 or 5 times a power of ten.
func nice125(v float64, up bool) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	steps := []float64{1, 2, 5, 10}
	if up {
		for _, m := range steps {
			if m*e >= v*(1-1e-12) {
				return m * e
			}
		}
	} else {
		for i := len(steps) - 1; i >= 0; i-- {
			if steps[i]*e <= v*(1+1e-12) {
				return steps[i] * e
			}
		}
	}
	return v
}

// logTicks labels 1, 2 and 5 times each power of ten, with unlabelled minor
// ticks between.
type logTicks struct{ format func(float64) string }

func (t logTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= 0 {
		return nil
	}
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for m := 1; m <= 9; m++ {
			v := float64(m) * math.Pow(10, e)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			tk := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				tk.Label = t.format(v)
			}
			ticks = append(ticks, tk)
		}
	}
	return ticks
}

// formatNumber writes v briefly: 1.5M, 20k, 2.5k, 250, 0.25.
func formatNumber(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return short(v/1e6) + "M"
	case a >= 1e3:
		return short(v/1e3) + "k"
	default:
		return short(v)
	}
}

// short writes v with at most six significant digits, so that 3×0.1 is
// "0.3".
func short(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
