/* Real photos and sample images, when the machine has them (skipped and
 * counted otherwise; never copied into the repository):
 *   - the ant and bee photos ($CNN_PHOTOS, default ../shared/photos/ants-bees:
 *     JPEGs from 193x130 to 2592x1944, a few progressive or with EXIF, one
 *     GIF named .jpg): each decodes; at 1/8 its DCT-scaled decode matches
 *     the full decode averaged over 8x8 blocks; libjpeg-turbo agrees with
 *     stb_image's independent JPEG decoder on average;
 *   - python3-skimage's sample PNGs: libpng and stb_image decode every one
 *     to the same pixels, exactly. */
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <stb/stb_image.h>

#include "io/decode.h"
#include "test.h"

/* The files under dir (recursively) whose names end in one of exts. */
static int list_files(const char *dir, const char *const *exts, char ***out, int n)
{
    DIR *d = opendir(dir);
    if (!d)
        return n;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            n = list_files(path, exts, out, n);
            continue;
        }
        for (const char *const *x = exts; *x; x++) {
            size_t a = strlen(e->d_name), b = strlen(*x);
            if (a > b && strcmp(e->d_name + a - b, *x) == 0) {
                char **grown = realloc(*out, (size_t)(n + 1) * sizeof **out);
                if (grown) {
                    *out = grown;
                    (*out)[n++] = strdup(path);
                }
                break;
            }
        }
    }
    closedir(d);
    return n;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Mean |a - b| of the scaled decode against the full one averaged over
 * scale x scale blocks (libjpeg's scaled IDCT is that average, up to
 * rounding and the chroma upsampling). */
static double block_difference(const cnn_decoded_image *full, const cnn_decoded_image *small,
                               int scale)
{
    double total = 0;
    long count = 0;
    for (int y = 0; y + 1 < small->rows; y++)
        for (int x = 0; x + 1 < small->cols; x++)
            for (int c = 0; c < 3; c++) {
                long sum = 0;
                for (int dy = 0; dy < scale; dy++)
                    for (int dx = 0; dx < scale; dx++)
                        sum += full->pixels[(((long)y * scale + dy) * full->cols + x * scale + dx)
                                            * 3 + c];
                double mean = (double)sum / (scale * scale);
                total += fabs(mean - small->pixels[((long)y * small->cols + x) * 3 + c]);
                count++;
            }
    return count ? total / (double)count : 0;
}

static void test_photos(void)
{
    const char *dir = getenv("CNN_PHOTOS") ? getenv("CNN_PHOTOS") : "../shared/photos/ants-bees";
    static const char *const exts[] = {".jpg", ".jpeg", ".JPG", ".gif", NULL};
    char **files = NULL;
    int n = list_files(dir, exts, &files, 0);
    if (n == 0) {
        test_skip("the ant and bee photos", dir);
        return;
    }
    qsort(files, (size_t)n, sizeof *files, by_name);
    int decoded = 0, scaled = 0, compared = 0, bad_scale = 0, bad_stb = 0;
    double worst_scale = 0, worst_stb = 0;
    for (int i = 0; i < n; i++) {
        size_t size;
        unsigned char *b = test_read_file(files[i], &size);
        cnn_decoded_image full, small;
        cnn_status st = b ? cnn_decode_image(b, size, files[i], 3, 0, 0, 0, &full)
                          : CNN_ERR_IO;
        CHECK_OK(st);
        if (st) {
            free(b);
            free(files[i]);
            continue;
        }
        decoded++;
        const bool jpeg = size > 2 && b[0] == 0xFF && b[1] == 0xD8;
        int want_r = (full.rows + 7) / 8, want_c = (full.cols + 7) / 8;
        st = cnn_decode_image(b, size, files[i], 3, want_r, want_c, 0, &small);
        CHECK_OK(st);
        if (st == CNN_OK && jpeg) {
            scaled++;
            CHECK(small.rows == want_r && small.cols == want_c && small.source_rows == full.rows
                  && small.source_cols == full.cols);
            double d = small.rows == want_r ? block_difference(&full, &small, 8) : 99;
            worst_scale = d > worst_scale ? d : worst_scale;
            bad_scale += d > 4.0;
        }
        if (st == CNN_OK)
            cnn_decoded_image_free(&small);
        /* every tenth photo against stb's decoder (its IDCT and chroma
         * upsampling differ: the average difference stays small) */
        if (jpeg && i % 10 == 0) {
            int w, h, comp;
            stbi_uc *s = stbi_load_from_memory(b, (int)size, &w, &h, &comp, 3);
            if (s && w == full.cols && h == full.rows) {
                double total = 0;
                long m = (long)w * h * 3;
                for (long k = 0; k < m; k++)
                    total += abs((int)s[k] - (int)full.pixels[k]);
                double d = total / (double)m;
                worst_stb = d > worst_stb ? d : worst_stb;
                bad_stb += d > 2.0;
                compared++;
            }
            stbi_image_free(s);
        }
        cnn_decoded_image_free(&full);
        free(b);
        free(files[i]);
    }
    free(files);
    CHECK(bad_scale == 0);
    CHECK(bad_stb == 0);
    CHECK(compared > 0);
    printf("test_image_photos: %d photos decoded, %d at 1/8 (worst mean difference from 8x8 block"
           " averages %.2f), %d against stb_image (worst mean difference %.2f)\n",
           decoded, scaled, worst_scale, compared, worst_stb);
}

static void test_skimage(void)
{
    const char *dir = getenv("CNN_SKIMAGE_DATA") ? getenv("CNN_SKIMAGE_DATA")
                                                  : "/usr/lib/python3/dist-packages/skimage/data";
    static const char *const exts[] = {".png", NULL};
    char **files = NULL;
    int n = list_files(dir, exts, &files, 0);
    if (n == 0) {
        test_skip("python3-skimage's sample images", dir);
        return;
    }
    int same = 0;
    for (int i = 0; i < n; i++) {
        size_t size;
        unsigned char *b = test_read_file(files[i], &size);
        cnn_decoded_image img;
        cnn_status st = b ? cnn_decode_image(b, size, files[i], 0, 0, 0, 0, &img) : CNN_ERR_IO;
        CHECK_OK(st);
        if (st == CNN_OK) {
            int w, h, comp;
            stbi_uc *s = stbi_load_from_memory(b, (int)size, &w, &h, &comp, img.channels);
            bool ok = s && w == img.cols && h == img.rows
                      && memcmp(s, img.pixels, (size_t)w * h * img.channels) == 0;
            if (!ok)
                fprintf(stderr, "%s: libpng and stb_image differ\n", files[i]);
            CHECK(ok);
            same += ok;
            stbi_image_free(s);
            cnn_decoded_image_free(&img);
        }
        free(b);
        free(files[i]);
    }
    free(files);
    printf("test_image_photos: %d of %d skimage sample PNGs decode identically with libpng and"
           " stb_image\n", same, n);
}

int main(void)
{
    test_photos();
    test_skimage();
    return test_finish("test_image_photos");
}
