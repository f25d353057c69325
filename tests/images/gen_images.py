#!/usr/bin/python3
"""Image fixtures for tests/test_image_formats.c, made with Pillow from pictures
this script draws itself (no third-party images in the repository).

Regenerate (from the repository root, with Debian's python3-pil, Pillow 9.4, and
libjpeg-turbo-progs for jpegtran):

    /usr/bin/python3 tests/images/gen_images.py

For each image file it writes the pixels Pillow decodes (what Keras' load_img
gets) as `<file>.<mode>.pixels`: a line "cnn-pixels ROWS COLS CHANNELS" and
the raw 8-bit samples, row-major. Modes: rgb, rgba, l (Pillow's convert),
la, and scale2/4/8 (a JPEG decoded with Pillow's draft(), libjpeg's DCT
scaling). Kinds Pillow cannot write (16-bit RGB, 4-bit grey, interlaced) are
written by a small PNG encoder below and decoded by Pillow as the reference.

Two outcomes are ours, not Pillow's, and the test says so: a 16-bit grey PNG
is reduced to its high byte (Pillow clips the 16-bit values to 255, which
turns nearly every 16-bit photo white), and EXIF orientation is ignored as
Pillow and Keras ignore it (the reference is simply Pillow's decode).
"""
import os
import struct
import subprocess
import warnings
import zlib

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def picture(w, h):
    """A deterministic RGB test card: gradients, a disc, stripes."""
    im = Image.new("RGB", (w, h))
    px = im.load()
    for y in range(h):
        for x in range(w):
            r = (x * 255) // max(w - 1, 1)
            g = (y * 255) // max(h - 1, 1)
            b = 255 if (x - w // 2) ** 2 + (y - h // 2) ** 2 < (min(w, h) // 3) ** 2 else 0
            if (x // 3) % 5 == 0:
                b = (b + 90) % 256
            px[x, y] = (r, g, b)
    return im


def write_pixels(name, mode, im):
    im = im.convert(mode.upper()) if mode in ("rgb", "rgba", "l", "la") else im
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[im.mode]
    with open(os.path.join(HERE, f"{name}.{mode}.pixels"), "wb") as f:
        f.write(b"cnn-pixels %d %d %d\n" % (im.height, im.width, channels))
        f.write(im.tobytes())


def write_raw(name, mode, rows, cols, channels, data):
    with open(os.path.join(HERE, f"{name}.{mode}.pixels"), "wb") as f:
        f.write(b"cnn-pixels %d %d %d\n" % (rows, cols, channels))
        f.write(bytes(data))


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_encode(w, h, color_type, depth, sample, interlace=False):
    """A PNG of sample(x, y) -> tuple of ints, filter 0; Adam7 when interlace."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]

    def row_bytes(xs, y):
        bits = []
        for x in xs:
            for v in sample(x, y):
                bits.append(v)
        if depth == 16:
            return b"".join(struct.pack(">H", v) for v in bits)
        if depth == 8:
            return bytes(bits)
        out, acc, n = bytearray(), 0, 0
        for v in bits:
            acc = (acc << depth) | v
            n += depth
            if n == 8:
                out.append(acc)
                acc, n = 0, 0
        if n:
            out.append(acc << (8 - n))
        return bytes(out)

    raw = bytearray()
    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                  (1, 0, 2, 2), (0, 1, 1, 2)]
        for x0, y0, dx, dy in passes:
            xs = list(range(x0, w, dx))
            if not xs:
                continue
            for y in range(y0, h, dy):
                raw += b"\0" + row_bytes(xs, y)
    else:
        for y in range(h):
            raw += b"\0" + row_bytes(range(w), y)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + png_chunk(b"IEND", b""))


def jpeg_scans(data):
    """Splits a JPEG into its header (up to its first scan) and its scans,
    each with the tables (DHT) written just before it."""
    pos, units, start, header_end = 2, [], None, None
    while pos < len(data):
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        if marker == 0xD9:
            break
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        end = pos + 2 + length
        if marker in (0xC4, 0xDA) and start is None:
            start = pos
            header_end = header_end or pos
        if marker == 0xDA:  # entropy-coded data up to the next real marker
            while not (data[end] == 0xFF and data[end + 1] not in (0,) + tuple(range(0xD0, 0xD8))):
                end += 1
            units.append(data[start:end])
            start = None
        pos = end
    return data[:header_end], units


def many_scans(src, dst, bands):
    """A grey progressive JPEG of 2 + 11 * bands scans: the DC, then AC
    coefficients 1..bands each in its own band, sent in 11 successive
    approximation steps (Al 10 .. 0, the most libjpeg allows for 8 bits), and
    the rest of the band in one scan. jpegtran (libjpeg-turbo-progs) writes
    at most 100 scans a file: each file sends the DC and 8 coefficients, and
    their scans are put together after the first file's DC scan."""
    header, scans = None, []
    for first in range(1, bands + 1, 8):
        last = min(first + 7, bands)
        script = ["0: 0-0, 0, 0;"]
        for k in range(first, last + 1):
            script.append(f"0: {k}-{k}, 0, 10;")
            script += [f"0: {k}-{k}, {al + 1}, {al};" for al in range(9, -1, -1)]
        if last == bands and bands < 63:
            script.append(f"0: {bands + 1}-63, 0, 0;")
        path = os.path.join(HERE, dst + ".scans")
        with open(path, "w") as f:
            f.write("\n".join(script) + "\n")
        try:
            out = subprocess.run(["jpegtran", "-scans", path, os.path.join(HERE, src)],
                                 check=True, capture_output=True).stdout
        finally:
            os.remove(path)
        head, units = jpeg_scans(out)
        if header is None:
            header, scans = head, units
        else:
            scans += units[1:]  # its DC scan was sent by the first file
    save(dst, header + b"".join(scans) + b"\xff\xd9")
    return len(scans)


def save(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def main():
    # Pillow warns that a palette's transparency is best converted to RGBA:
    # keeping it a palette is the point of that fixture
    warnings.simplefilter("ignore", UserWarning)
    card = picture(37, 29)
    alpha = Image.linear_gradient("L").resize(card.size)

    # PNG, as Pillow writes them
    card.save(os.path.join(HERE, "rgb.png"))
    write_pixels("rgb.png", "rgb", card)
    write_pixels("rgb.png", "l", card)
    rgba = card.copy()
    rgba.putalpha(alpha)
    rgba.save(os.path.join(HERE, "rgba.png"))
    for mode in ("rgba", "rgb", "l"):
        write_pixels("rgba.png", mode, rgba)
    grey = card.convert("L")
    grey.save(os.path.join(HERE, "grey.png"))
    write_pixels("grey.png", "l", grey)
    write_pixels("grey.png", "rgb", grey)
    la = grey.copy()
    la.putalpha(alpha)
    la.save(os.path.join(HERE, "grey_alpha.png"))
    write_pixels("grey_alpha.png", "la", la)
    write_pixels("grey_alpha.png", "rgb", la)
    pal = card.quantize(16)
    pal.save(os.path.join(HERE, "palette.png"))
    write_pixels("palette.png", "rgb", pal)
    pal_t = card.quantize(16)
    pal_t.save(os.path.join(HERE, "palette_trns.png"),
               transparency=bytes(range(0, 256, 16)))
    pal_t = Image.open(os.path.join(HERE, "palette_trns.png"))
    write_pixels("palette_trns.png", "rgba", pal_t)
    write_pixels("palette_trns.png", "rgb", pal_t)
    # a tRNS colour on grey or RGB: ignored by convert("RGB") (and by us)
    grey.save(os.path.join(HERE, "grey_trns.png"), transparency=128)
    write_pixels("grey_trns.png", "l", Image.open(os.path.join(HERE, "grey_trns.png")))
    card.save(os.path.join(HERE, "rgb_trns.png"), transparency=card.getpixel((0, 0)))
    write_pixels("rgb_trns.png", "rgb", Image.open(os.path.join(HERE, "rgb_trns.png")))
    one = grey.convert("1")
    one.save(os.path.join(HERE, "grey1.png"))
    write_pixels("grey1.png", "l", Image.open(os.path.join(HERE, "grey1.png")))

    # PNG kinds Pillow does not write: our encoder, Pillow's decode
    w, h = 37, 29
    src = card.load()
    save("rgb16.png", png_encode(w, h, 2, 16,
                                 lambda x, y: tuple(v * 256 + (x * 7 + y) % 256 for v in src[x, y])))
    write_pixels("rgb16.png", "rgb", Image.open(os.path.join(HERE, "rgb16.png")))
    gsrc = grey.load()
    save("grey4.png", png_encode(w, h, 0, 4, lambda x, y: (gsrc[x, y] >> 4,)))
    write_pixels("grey4.png", "l", Image.open(os.path.join(HERE, "grey4.png")))
    save("interlaced.png", png_encode(w, h, 2, 8, lambda x, y: src[x, y], interlace=True))
    write_pixels("interlaced.png", "rgb", Image.open(os.path.join(HERE, "interlaced.png")))
    # 16-bit grey: our outcome is the high byte (see the docstring)
    g16 = lambda x, y: (max(gsrc[x, y] * 257 - (x + y) % 3, 0),)
    save("grey16.png", png_encode(w, h, 0, 16, g16))
    write_raw("grey16.png", "l", h, w, 1,
              [g16(x, y)[0] >> 8 for y in range(h) for x in range(w)])

    # JPEG, as Pillow (libjpeg-turbo) writes them
    card.save(os.path.join(HERE, "rgb.jpg"), quality=90)
    jpg = Image.open(os.path.join(HERE, "rgb.jpg"))
    write_pixels("rgb.jpg", "rgb", jpg)
    write_pixels("rgb.jpg", "l", jpg)
    grey.save(os.path.join(HERE, "grey.jpg"), quality=90)
    write_pixels("grey.jpg", "l", Image.open(os.path.join(HERE, "grey.jpg")))
    card.convert("CMYK").save(os.path.join(HERE, "cmyk.jpg"), quality=90)
    write_pixels("cmyk.jpg", "rgb", Image.open(os.path.join(HERE, "cmyk.jpg")))
    card.save(os.path.join(HERE, "progressive.jpg"), quality=90, progressive=True)
    write_pixels("progressive.jpg", "rgb", Image.open(os.path.join(HERE, "progressive.jpg")))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    card.save(os.path.join(HERE, "exif_rotated.jpg"), quality=90, exif=exif.tobytes())
    write_pixels("exif_rotated.jpg", "rgb", Image.open(os.path.join(HERE, "exif_rotated.jpg")))
    # a baseline JPEG with each component in its own scan (libjpeg then keeps
    # every coefficient, as for a progressive one)
    path = os.path.join(HERE, "separate.jpg.scans")
    with open(path, "w") as f:
        f.write("0;\n1;\n2;\n")
    try:
        subprocess.run(["jpegtran", "-scans", path, "-outfile", os.path.join(HERE, "separate.jpg"),
                        os.path.join(HERE, "rgb.jpg")], check=True)
    finally:
        os.remove(path)
    write_pixels("separate.jpg", "rgb", Image.open(os.path.join(HERE, "separate.jpg")))
    # progressive JPEGs of 398 scans (decoded) and 694 (over the limit of 500)
    assert many_scans("grey.jpg", "scans398.jpg", 36) == 398
    write_pixels("scans398.jpg", "l", Image.open(os.path.join(HERE, "scans398.jpg")))
    assert many_scans("grey.jpg", "scans694.jpg", 63) == 694
    big = picture(131, 97)
    big.save(os.path.join(HERE, "big.jpg"), quality=85)
    for denom in (2, 4, 8):
        im = Image.open(os.path.join(HERE, "big.jpg"))
        im.draft("RGB", ((131 + denom - 1) // denom, (97 + denom - 1) // denom))
        write_pixels("big.jpg", "scale%d" % denom, im.convert("RGB"))


if __name__ == "__main__":
    main()
