package extract

import (
	"bufio"
	"image"
	"image/color"
	_ "image/gif" // registers GIF for DecodeConfig
	_ "image/jpeg"
	"image/png"
	"os"
	"path/filepath"
)

// extractImage refuses an image whose header claims more pixels than the
// cap (a 40-byte PNG can claim 100000×100000: decoding it would need 40 GB)
// before anything decodes it, then reads it with tesseract and makes a
// thumbnail.
func extractImage(job Job, t *text) Result {
	f, err := os.Open(job.Input)
	if err != nil {
		return failed(ReasonCrashed, "open: %v", err)
	}
	cfg, kind, err := image.DecodeConfig(bufio.NewReader(f))
	f.Close()
	if err != nil {
		return failed(ReasonCorrupt, "image header: %v", err)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); job.Limits.MaxPixels > 0 && px > job.Limits.MaxPixels {
		return failed(ReasonImageTooLarge, "%d×%d pixels, above the cap of %d", cfg.Width, cfg.Height, job.Limits.MaxPixels)
	}
	res := Result{Kind: kind, Pages: 1}
	ocr := tool(job, t.cap, job.Tools.Tesseract, job.Input, "stdout", "-l", languages(job), "--psm", "3")
	if r, bad := toolFailure(job, "tesseract", ocr); bad {
		return r
	}
	t.WriteString(string(ocr.out))
	t.truncated = t.truncated || ocr.truncated
	res.OCR = true
	if err := imageThumbnail(job.Input, filepath.Join(job.OutDir, ThumbFile), thumbSize(job)); err != nil {
		res.Detail = "no thumbnail: " + err.Error()
	}
	return res
}

// imageThumbnail decodes src (its size already checked) and writes it
// scaled to size on its longest side as a PNG (box filter: each thumbnail
// pixel is the mean of the source pixels it covers).
func imageThumbnail(src, dst string, size int) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	img, _, err := image.Decode(bufio.NewReader(f))
	f.Close()
	if err != nil {
		return err
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w == 0 || h == 0 {
		return nil
	}
	tw, th := w, h
	if w > size || h > size {
		if w >= h {
			tw, th = size, max(1, h*size/w)
		} else {
			tw, th = max(1, w*size/h), size
		}
	}
	out := image.NewRGBA(image.Rect(0, 0, tw, th))
	for y := range th {
		y0, y1 := b.Min.Y+y*h/th, b.Min.Y+max((y+1)*h/th, y*h/th+1)
		for x := range tw {
			x0, x1 := b.Min.X+x*w/tw, b.Min.X+max((x+1)*w/tw, x*w/tw+1)
			var r, g, bl, a, n uint64
			for sy := y0; sy < y1; sy++ {
				for sx := x0; sx < x1; sx++ {
					cr, cg, cb, ca := img.At(sx, sy).RGBA()
					r, g, bl, a, n = r+uint64(cr), g+uint64(cg), bl+uint64(cb), a+uint64(ca), n+1
				}
			}
			out.Set(x, y, color.RGBA64{uint16(r / n), uint16(g / n), uint16(bl / n), uint16(a / n)})
		}
	}
	o, err := os.Create(dst)
	if err != nil {
		return err
	}
	if err := png.Encode(o, out); err != nil {
		o.Close()
		return err
	}
	return o.Close()
}
