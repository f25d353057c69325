#!/usr/bin/python3
"""Writes the small image files tests/test_dataset_bad.c reads
(tests/data/images/), with Pillow: the PNG and JPEG kinds a folder of real
photos holds besides 8-bit RGB. Run it again to regenerate them:
    /usr/bin/python3 scripts/make_image_fixtures.py
Each image is 6 rows x 8 columns so the tests can check the decoded size."""
import io
import os
import struct
import zlib

from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "images")


def gradient(mode):
    img = Image.new("RGB", (8, 6))
    img.putdata([(x * 30, y * 40, 100) for y in range(6) for x in range(8)])
    return img.convert(mode)


def png16(path, channels):
    """A 16-bit PNG (Pillow cannot write 16-bit RGB): grey or RGB samples."""
    color = {1: 0, 3: 2}[channels]
    rows = []
    for y in range(6):
        row = b"\0"
        for x in range(8):
            for c in range(channels):
                row += struct.pack(">H", (x * 8000 + y * 1000 + c * 300) & 0xFFFF)
        rows.append(row)

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 6, 16, color, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


def main():
    os.makedirs(OUT, exist_ok=True)
    gradient("P").save(os.path.join(OUT, "palette.png"))
    gradient("L").save(os.path.join(OUT, "gray.jpg"), quality=95)
    gradient("CMYK").save(os.path.join(OUT, "cmyk.jpg"), quality=95)
    gradient("RGB").save(os.path.join(OUT, "progressive.jpg"), quality=95, progressive=True)
    rgba = gradient("RGBA")
    rgba.putalpha(128)
    rgba.save(os.path.join(OUT, "rgba.png"))
    gradient("RGB").save(os.path.join(OUT, "rgb.bmp"))
    gradient("P").save(os.path.join(OUT, "anim.gif"), save_all=True,
                       append_images=[gradient("P").rotate(180)])
    png16(os.path.join(OUT, "gray16.png"), 1)
    png16(os.path.join(OUT, "rgb16.png"), 3)


if __name__ == "__main__":
    main()
