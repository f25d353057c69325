# Rendered digits in MNIST's style (white on black, the digit in a 20x20 box,
# centred by its centre of mass in 28x28): a stand-in for MNIST's test set,
# which is not on this machine (docs/QUANTIZATION.md, "Measured").
# Usage: /usr/bin/python3 scripts/render_digits.py N SEED PREFIX
# writes PREFIX-images-idx3-ubyte and PREFIX-labels-idx1-ubyte (labels i % 10);
# the same N and SEED give the same bytes.
import glob, random, struct, sys
from PIL import Image, ImageDraw, ImageFont
random.seed(int(sys.argv[2]))
fonts = sorted(glob.glob('/usr/share/fonts/truetype/dejavu/DejaVuSans*.ttf')) + \
        sorted(glob.glob('/usr/share/fonts/truetype/dejavu/DejaVuSerif*.ttf'))
n = int(sys.argv[1])
pix, lab = bytearray(), bytearray()
for i in range(n):
    d = i % 10
    font = ImageFont.truetype(random.choice(fonts), 64)
    im = Image.new('L', (96, 96), 0)
    ImageDraw.Draw(im).text((48, 48), str(d), fill=255, font=font, anchor='mm',
                            stroke_width=random.choice([0, 1, 2, 3]), stroke_fill=255)
    im = im.rotate(random.uniform(-12, 12), resample=Image.BILINEAR)
    im = im.crop(im.getbbox())
    w, h = im.size
    s = 20.0 / max(w, h)
    im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)
    canvas = Image.new('L', (28, 28), 0)
    px = list(im.getdata()); w, h = im.size
    tot = sum(px) or 1
    cx = sum((k % w) * v for k, v in enumerate(px)) / tot
    cy = sum((k // w) * v for k, v in enumerate(px)) / tot
    canvas.paste(im, (round(14 - cx), round(14 - cy)))
    pix += bytes(canvas.getdata())
    lab.append(d)
open(sys.argv[3] + '-images-idx3-ubyte', 'wb').write(struct.pack('>BBBB', 0, 0, 8, 3) + struct.pack('>3I', n, 28, 28) + pix)
open(sys.argv[3] + '-labels-idx1-ubyte', 'wb').write(struct.pack('>BBBB', 0, 0, 8, 1) + struct.pack('>I', n) + lab)
