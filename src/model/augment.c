/* On-the-fly data augmentation of a training batch, in place. Each image
 * is resampled through one inverse map: output pixel (y, x) takes the
 * input at R^-1 (p - c) + c - t, mirrored first if flipped, where c is the
 * image centre, R the rotation and t the shift; outside the image is 0.
 * Without rotation the map hits pixel centres exactly (a shift and a flip
 * move pixels unchanged); with it, values are bilinear. */
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "model/model.h"

#define PI 3.14159265358979323846

typedef struct {
    bool flip;
    int dy, dx;       /* shift, pixels */
    float cos_a, sin_a;
    bool rotate;
} image_transform;

static image_transform draw(const cnn_augmentation *a, cnn_rng *rng)
{
    image_transform t = {.cos_a = 1};
    /* the draws are made whether or not used, so adding one kind of
     * augmentation does not change the others' */
    float flip = cnn_rng_uniform(rng);
    int dy = (int)cnn_rng_below(rng, 2 * (uint64_t)a->max_shift + 1) - a->max_shift;
    int dx = (int)cnn_rng_below(rng, 2 * (uint64_t)a->max_shift + 1) - a->max_shift;
    float angle = (2 * cnn_rng_uniform(rng) - 1) * a->max_rotation * (float)(PI / 180);
    t.flip = a->horizontal_flip && flip < 0.5f;
    t.dy = dy;
    t.dx = dx;
    if (a->max_rotation > 0 && angle != 0) {
        t.rotate = true;
        t.cos_a = cosf(angle);
        t.sin_a = sinf(angle);
    }
    return t;
}

/* The value of channel ch at (y, x) of src, 0 outside. */
static float at(const float *src, int h, int w, int c, int y, int x, int ch)
{
    return y < 0 || y >= h || x < 0 || x >= w ? 0.0f : src[((size_t)y * w + x) * c + ch];
}

static void transform(const image_transform *t, const float *src, float *dst, cnn_shape s)
{
    const int h = s.dims[0], w = s.dims[1], c = s.dims[2];
    const float cy = (h - 1) * 0.5f, cx = (w - 1) * 0.5f;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float *out = dst + ((size_t)y * w + x) * c;
            /* undo the shift, then the rotation, then the flip */
            float py = (float)(y - t->dy) - cy, px = (float)(x - t->dx) - cx;
            float sy = py, sx = px;
            if (t->rotate) {
                sy = t->cos_a * py - t->sin_a * px;
                sx = t->sin_a * py + t->cos_a * px;
            }
            sy += cy;
            sx += cx;
            if (t->flip)
                sx = (float)(w - 1) - sx;
            if (!t->rotate) {
                int iy = (int)lrintf(sy), ix = (int)lrintf(sx);
                for (int ch = 0; ch < c; ch++)
                    out[ch] = at(src, h, w, c, iy, ix, ch);
                continue;
            }
            int y0 = (int)floorf(sy), x0 = (int)floorf(sx);
            float fy = sy - (float)y0, fx = sx - (float)x0;
            for (int ch = 0; ch < c; ch++)
                out[ch] = (1 - fy) * ((1 - fx) * at(src, h, w, c, y0, x0, ch)
                                      + fx * at(src, h, w, c, y0, x0 + 1, ch))
                        + fy * ((1 - fx) * at(src, h, w, c, y0 + 1, x0, ch)
                                + fx * at(src, h, w, c, y0 + 1, x0 + 1, ch));
        }
}

void cnn_augment_batch(const cnn_augmentation *a, uint64_t seed, int epoch, int64_t step,
                       float *images, int count, cnn_shape shape, float *scratch)
{
    cnn_augment_batch_from(a, seed, epoch, step, 0, images, count, shape, scratch);
}

void cnn_augment_batch_from(const cnn_augmentation *a, uint64_t seed, int epoch, int64_t step,
                            int64_t first, float *images, int count, cnn_shape shape,
                            float *scratch)
{
    const size_t size = (size_t)shape.dims[0] * shape.dims[1] * shape.dims[2];
    for (int i = 0; i < count; i++) {
        cnn_rng rng;
        uint64_t key = seed ^ ((uint64_t)epoch * 0x9E3779B97F4A7C15ull);
        key = cnn_splitmix64(&key) ^ ((uint64_t)step * 0xBF58476D1CE4E5B9ull);
        key = cnn_splitmix64(&key) ^ (uint64_t)(first + i);
        cnn_rng_seed(&rng, key);
        image_transform t = draw(a, &rng);
        if (!t.flip && !t.rotate && t.dy == 0 && t.dx == 0)
            continue;
        float *img = images + (size_t)i * size;
        memcpy(scratch, img, size * sizeof(float));
        transform(&t, scratch, img, shape);
    }
}
