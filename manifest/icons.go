package manifest

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
)

// The icon is a check mark (an approval), drawn as two thick strokes on a
// 32-unit grid and scaled: filling the whole 32×32 outline icon (Teams
// wants no padding there), and the central 96×96 symbol area of the
// 192×192 colour icon.
func checkMark() [3][2]float64 { return [3][2]float64{{2.5, 17}, {11.5, 27}, {29.5, 5}} }

const (
	checkWidth  = 5.0 // stroke width in grid units
	outlineSize = 32
	colorSize   = 192
	symbolSize  = 96
)

// accentRGBA is AccentColor as a colour.
func accentRGBA() color.NRGBA { return color.NRGBA{R: 0x2B, G: 0x6C, B: 0xB0, A: 0xFF} }

// onCheck reports whether grid point (x, y) is within the stroke.
func onCheck(x, y float64) bool {
	m := checkMark()
	for i := 0; i+1 < len(m); i++ {
		if segmentDist(x, y, m[i], m[i+1]) <= checkWidth/2 {
			return true
		}
	}
	return false
}

func segmentDist(x, y float64, a, b [2]float64) float64 {
	dx, dy := b[0]-a[0], b[1]-a[1]
	t := ((x-a[0])*dx + (y-a[1])*dy) / (dx*dx + dy*dy)
	t = math.Max(0, math.Min(1, t))
	return math.Hypot(x-(a[0]+t*dx), y-(a[1]+t*dy))
}

// outlinePNG is the 32×32 outline icon: pure white (255,255,255) where the
// mark is, fully transparent elsewhere, no anti-aliasing (Teams' rule).
func outlinePNG() ([]byte, error) {
	img := image.NewNRGBA(image.Rect(0, 0, outlineSize, outlineSize))
	for y := range outlineSize {
		for x := range outlineSize {
			if onCheck(float64(x)+0.5, float64(y)+0.5) {
				img.SetNRGBA(x, y, color.NRGBA{R: 255, G: 255, B: 255, A: 255})
			}
		}
	}
	return encode(img)
}

// colorPNG is the 192×192 colour icon: the white mark, 96×96, centred on
// the accent colour.
func colorPNG() ([]byte, error) {
	img := image.NewNRGBA(image.Rect(0, 0, colorSize, colorSize))
	off := float64(colorSize-symbolSize) / 2
	scale := float64(symbolSize) / outlineSize
	for y := range colorSize {
		for x := range colorSize {
			c := accentRGBA()
			gx, gy := (float64(x)+0.5-off)/scale, (float64(y)+0.5-off)/scale
			if gx >= 0 && gy >= 0 && gx < outlineSize && gy < outlineSize && onCheck(gx, gy) {
				c = color.NRGBA{R: 255, G: 255, B: 255, A: 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return encode(img)
}

func encode(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
