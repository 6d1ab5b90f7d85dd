"""Write tests/fixtures/shapes.png: a 64x64 colour test image for `cnndsl run --image`.

Drawn with Pillow's primitives only (no fonts), so the pixels are the same on every machine:
a white background, a black frame and bar (so the grey image spans the full 0..255 range), and
red, green, blue and yellow shapes whose grey levels differ, so the grey conversion matters.

    python tools/make_test_image.py [OUT.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 64
DEFAULT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "shapes.png"


def draw() -> Image.Image:
    """The test image, RGB, 64x64."""
    image = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    pen = ImageDraw.Draw(image)
    pen.rectangle((0, 0, SIZE - 1, SIZE - 1), outline=(0, 0, 0), width=2)
    pen.ellipse((6, 6, 29, 29), fill=(220, 30, 30))  # red disc
    pen.rectangle((36, 8, 57, 27), fill=(40, 170, 60))  # green square
    pen.polygon([(8, 57), (20, 35), (32, 57)], fill=(30, 60, 200))  # blue triangle
    pen.rectangle((38, 36, 56, 56), fill=(240, 200, 40), outline=(0, 0, 0), width=1)  # yellow box
    pen.line((40, 54, 54, 38), fill=(0, 0, 0), width=2)  # a diagonal edge for the Sobel filters
    pen.rectangle((4, 31, 59, 32), fill=(0, 0, 0))  # a horizontal bar
    return image


def main(argv: list[str]) -> None:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT
    draw().save(out, format="PNG", optimize=True)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv)
