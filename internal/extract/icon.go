package extract

import (
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"strings"
)

// Icon colours by family: text documents blue, spreadsheets green,
// presentations orange (the colours office suites use for them).
var iconColors = map[string]color.RGBA{
	"docx": {0x2b, 0x57, 0x9a, 0xff}, "odt": {0x2b, 0x57, 0x9a, 0xff},
	"xlsx": {0x21, 0x73, 0x46, 0xff}, "ods": {0x21, 0x73, 0x46, 0xff},
	"pptx": {0xd2, 0x47, 0x26, 0xff}, "odp": {0xd2, 0x47, 0x26, 0xff},
}

// glyphs is a 5×7 bitmap of the letters the kinds' labels use (one row
// per string, '#' set).
var glyphs = map[rune][7]string{
	'D': {"####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."},
	'O': {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'C': {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."},
	'X': {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"},
	'L': {"#....", "#....", "#....", "#....", "#....", "#....", "#####"},
	'S': {".####", "#....", "#....", ".###.", "....#", "....#", "####."},
	'P': {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."},
	'T': {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."},
}

// officeIcon writes the icon of an office kind as a size×size PNG: a page
// with a folded corner, grey lines for text, and a band of the family's
// colour carrying the kind (DOCX, ODS…).
func officeIcon(kind, dst string, size int) error {
	band, ok := iconColors[kind]
	if !ok {
		band = color.RGBA{0x60, 0x60, 0x60, 0xff}
	}
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	fill := func(x0, y0, x1, y1 int, c color.Color) {
		draw.Draw(img, image.Rect(x0, y0, x1, y1), image.NewUniform(c), image.Point{}, draw.Src)
	}
	// The page: three quarters of the width, centred, a border, a fold.
	w := size * 3 / 4
	px0, px1, py0, py1 := (size-w)/2, (size+w)/2, size/16, size-size/16
	border := color.RGBA{0xb0, 0xb0, 0xb0, 0xff}
	fill(px0, py0, px1, py1, border)
	fill(px0+1, py0+1, px1-1, py1-1, color.White)
	fold := w / 5
	for i := range fold {
		// Cut the corner: transparent above the diagonal, grey along it.
		fill(px1-fold+i, py0, px1, py0+i+1, color.Transparent)
		img.Set(px1-fold+i, py0+i, border)
	}
	fill(px1-fold, py0+fold-1, px1, py0+fold, border)
	// Lines of "text".
	grey := color.RGBA{0xd0, 0xd0, 0xd0, 0xff}
	step := max(size/20, 2)
	for y := py0 + fold + step; y < py0+(py1-py0)/2; y += 2 * step {
		fill(px0+w/8, y, px1-w/8, y+max(step/2, 1), grey)
	}
	// The band and its label.
	by0, by1 := py0+(py1-py0)*11/20, py0+(py1-py0)*16/20
	fill(px0-w/10, by0, px1+w/10, by1, band)
	label := strings.ToUpper(kind)
	scale := max(1, min((by1-by0)*2/3/7, (w+w/5)*9/10/(6*len(label))))
	lx := (size - (6*len(label)-1)*scale) / 2
	ly := by0 + ((by1-by0)-7*scale)/2
	for i, r := range label {
		g, ok := glyphs[r]
		if !ok {
			continue
		}
		for row := range 7 {
			for col := range 5 {
				if g[row][col] == '#' {
					x := lx + (i*6+col)*scale
					y := ly + row*scale
					fill(x, y, x+scale, y+scale, color.White)
				}
			}
		}
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
