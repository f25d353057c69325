/* HDF5 for Keras files, through Debian's libhdf5 (serial, thread-safe
 * build): file images in memory, the attributes and datasets Keras writes,
 * read with every property a hostile file could abuse checked first.
 *
 * HDF5 reports errors on a per-thread stack; its messages are picked up
 * into ours (the innermost one says what was wrong: "truncated file: eof
 * = 4096, ..."). A file is never allowed to reach outside itself: external
 * links are refused when followed, datasets whose data live in other files
 * (external storage, virtual datasets) and filters beyond HDF5's own
 * (which would load plugins) are refused before reading. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "io/keras.h"

/* Attributes and lists bigger than this are not Keras metadata. */
#define MAX_LIST_ITEMS 100000
#define MAX_NAME_BYTES 4096

void cnn_h5_quiet_begin(cnn_h5_quiet *q)
{
    q->func = NULL;
    q->data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void cnn_h5_quiet_end(const cnn_h5_quiet *q)
{
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

/* The innermost HDF5 error description (where it was detected). */
static herr_t first_error(unsigned n, const H5E_error2_t *e, void *user)
{
    char *buf = user;
    if (n == 0 && e->desc)
        snprintf(buf, 160, "%s", e->desc);
    return 0;
}

/* Call right after the failing HDF5 call: every HDF5 call clears the
 * stack when it starts. */
static const char *hdf5_reason(char buf[160])
{
    if (buf[0] == '\0' || strcmp(buf, "unknown HDF5 error") == 0) {
        buf[0] = '\0';
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_error, buf);
        H5Eclear2(H5E_DEFAULT);
    }
    return buf[0] ? buf : "unknown HDF5 error";
}

/* ---- Files as memory images -------------------------------------------------- */

/* HDF5 recognises an open file by its name, also for memory images: each
 * image gets a name no other open one has (the address of a local
 * variable of the opening call, unique among calls running at once). */
static void image_name(char *buf, size_t size, const void *tag)
{
    snprintf(buf, size, "cnn-image-%p", tag);
}

cnn_status cnn_h5_open_image(const void *bytes, size_t size, const char *name, hid_t *file)
{
    *file = H5I_INVALID_HID;
    char reason[160] = "", id[64];
    int tag;
    image_name(id, sizeof id, &tag);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* STRONG: closing the file closes whatever is still open in it, also
     * what HDF5 itself leaves open on some damaged files. */
    if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 16, 0) < 0
        || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0
        || H5Pset_file_image(fapl, (void *)bytes, size) < 0) {
        if (fapl >= 0)
            H5Pclose(fapl);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: cannot hold the HDF5 image in memory (%zu bytes):"
                        " %s", name, size, hdf5_reason(reason));
    }
    *file = H5Fopen(id, H5F_ACC_RDONLY, fapl);
    /* the reason first: any later HDF5 call clears the error stack */
    if (*file < 0)
        hdf5_reason(reason);
    H5Pclose(fapl);
    if (*file < 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: not a readable HDF5 file (truncated or damaged?):"
                        " %s", name, reason);
    return CNN_OK;
}

cnn_status cnn_h5_create_image(const char *name, hid_t *file)
{
    char reason[160] = "", id[64];
    int tag;
    image_name(id, sizeof id, &tag);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    *file = H5I_INVALID_HID;
    if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 20, 0) >= 0)
        *file = H5Fcreate(id, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (*file < 0)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: cannot create an HDF5 file in memory: %s", name,
                        hdf5_reason(reason));
    return CNN_OK;
}

cnn_status cnn_h5_image_bytes(hid_t file, const char *name, void **bytes, size_t *size)
{
    char reason[160] = "";
    *bytes = NULL;
    *size = 0;
    if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0)
        return cnn_fail(CNN_ERR_IO, "%s: cannot finish the HDF5 file: %s", name,
                        hdf5_reason(reason));
    ssize_t n = H5Fget_file_image(file, NULL, 0);
    if (n <= 0)
        return cnn_fail(CNN_ERR_IO, "%s: cannot get the HDF5 file's bytes: %s", name,
                        hdf5_reason(reason));
    void *buf = malloc((size_t)n);
    if (!buf)
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory (%zd bytes)", name, n);
    if (H5Fget_file_image(file, buf, (size_t)n) != n) {
        free(buf);
        return cnn_fail(CNN_ERR_IO, "%s: cannot get the HDF5 file's bytes: %s", name,
                        hdf5_reason(reason));
    }
    *bytes = buf;
    *size = (size_t)n;
    return CNN_OK;
}

/* ---- Staying inside the file ------------------------------------------------- */

static herr_t refuse_external_link(const char *parent_file, const char *parent_group,
                                   const char *child_file, const char *child_object,
                                   unsigned *acc_flags, hid_t fapl, void *user)
{
    (void)parent_file, (void)parent_group, (void)child_file, (void)child_object;
    (void)acc_flags, (void)fapl, (void)user;
    return -1;
}

static hid_t access_list(hid_t cls)
{
    hid_t p = H5Pcreate(cls);
    if (p >= 0 && H5Pset_elink_cb(p, refuse_external_link, NULL) < 0) {
        H5Pclose(p);
        return H5I_INVALID_HID;
    }
    return p;
}

hid_t cnn_h5_gapl(void) { return access_list(H5P_GROUP_ACCESS); }
hid_t cnn_h5_dapl(void) { return access_list(H5P_DATASET_ACCESS); }

bool cnn_h5_exists(hid_t loc, const char *path)
{
    hid_t lapl = access_list(H5P_LINK_ACCESS);
    if (lapl < 0)
        return false;
    /* Each step must exist for the next to be asked about. */
    char buf[MAX_NAME_BYTES];
    size_t n = strlen(path);
    bool ok = n > 0 && n < sizeof buf;
    if (ok)
        memcpy(buf, path, n + 1);
    for (size_t i = 0; ok && i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        if (i == 0)
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        ok = H5Lexists(loc, buf, lapl) > 0 && H5Oexists_by_name(loc, buf, lapl) > 0;
        buf[i] = saved;
    }
    H5Pclose(lapl);
    H5Eclear2(H5E_DEFAULT);
    return ok;
}

cnn_status cnn_h5_open_group(hid_t loc, const char *path, const char *file, const char *where,
                             hid_t *out)
{
    *out = H5I_INVALID_HID;
    if (!cnn_h5_exists(loc, path))
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s: no group %s", file, where, path);
    hid_t gapl = cnn_h5_gapl();
    *out = gapl >= 0 ? H5Gopen2(loc, path, gapl) : H5I_INVALID_HID;
    if (gapl >= 0)
        H5Pclose(gapl);
    if (*out < 0) {
        char reason[160] = "";
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s: %s is not a group: %s", file, where, path,
                        hdf5_reason(reason));
    }
    return CNN_OK;
}

cnn_status cnn_h5_group_size(hid_t group, const char *file, const char *where, int64_t *n)
{
    H5G_info_t info;
    char reason[160] = "";
    if (H5Gget_info(group, &info) < 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s: cannot list the group: %s", file, where,
                        hdf5_reason(reason));
    *n = (int64_t)info.nlinks;
    return CNN_OK;
}

/* ---- String attributes --------------------------------------------------------- */

/* A memory string type matching a file string type's length kind and
 * character set (HDF5 will not convert between ASCII and UTF-8). */
static hid_t memory_string_type(hid_t ftype, size_t fixed_size)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return t;
    if (H5Tset_size(t, fixed_size ? fixed_size : H5T_VARIABLE) < 0
        || H5Tset_cset(t, H5Tget_cset(ftype)) < 0
        || (fixed_size && H5Tset_strpad(t, H5T_STR_NULLPAD) < 0)) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

/* Reads count strings of attribute a (type t) into out[0..count). */
static cnn_status read_strings(hid_t a, hid_t t, hid_t space, hssize_t count, const char *file,
                               const char *where, const char *attr, size_t max, char **out)
{
    char reason[160] = "";
    cnn_status st = CNN_OK;
    if (H5Tis_variable_str(t) > 0) {
        char **raw = calloc((size_t)count, sizeof *raw);
        hid_t mt = memory_string_type(t, 0);
        if (!raw || mt < 0) {
            free(raw);
            if (mt >= 0)
                H5Tclose(mt);
            return cnn_fail(CNN_ERR_NO_MEMORY, "%s: %s: out of memory", file, where);
        }
        if (H5Aread(a, mt, raw) < 0) {
            st = cnn_fail(CNN_ERR_FORMAT, "%s: %s: attribute %s cannot be read: %s", file, where,
                          attr, hdf5_reason(reason));
        } else {
            for (hssize_t i = 0; i < count && !st; i++) {
                size_t n = raw[i] ? strnlen(raw[i], max + 1) : 0;
                if (n > max)
                    st = cnn_fail(CNN_ERR_FORMAT, "%s: %s: attribute %s: a string of more than"
                                  " %zu bytes", file, where, attr, max);
                else if (!(out[i] = strndup(raw[i] ? raw[i] : "", n)))
                    st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: %s: out of memory", file, where);
            }
            H5Dvlen_reclaim(mt, space, H5P_DEFAULT, raw);
        }
        H5Tclose(mt);
        free(raw);
        return st;
    }
    size_t width = H5Tget_size(t);
    int64_t total;
    if (width == 0 || width > max || cnn_mul_overflows((int64_t)width, (int64_t)count, &total)
        || total > (int64_t)CNN_KERAS_MAX_JSON)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s: attribute %s: %lld strings of %zu bytes each are"
                        " more than a Keras file holds", file, where, attr, (long long)count,
                        width);
    char *buf = malloc((size_t)total);
    hid_t mt = memory_string_type(t, width);
    if (!buf || mt < 0) {
        free(buf);
        if (mt >= 0)
            H5Tclose(mt);
        return cnn_fail(CNN_ERR_NO_MEMORY, "%s: %s: out of memory", file, where);
    }
    if (H5Aread(a, mt, buf) < 0)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: %s: attribute %s cannot be read: %s", file, where, attr,
                      hdf5_reason(reason));
    for (hssize_t i = 0; i < count && !st; i++)
        if (!(out[i] = strndup(buf + (size_t)i * width, width)))
            st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: %s: out of memory", file, where);
    H5Tclose(mt);
    free(buf);
    return st;
}

/* Opens attribute attr of obj with its type and space; *a = invalid if
 * there is no such attribute. */
static cnn_status open_attr(hid_t obj, const char *attr, const char *file, const char *where,
                            hid_t *a, hid_t *t, hid_t *space)
{
    char reason[160] = "";
    *a = *t = *space = H5I_INVALID_HID;
    htri_t has = H5Aexists(obj, attr);
    if (has < 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s: cannot read its attributes: %s", file, where,
                        hdf5_reason(reason));
    if (!has)
        return CNN_OK;
    *a = H5Aopen(obj, attr, H5P_DEFAULT);
    if (*a >= 0)
        *t = H5Aget_type(*a);
    if (*t >= 0)
        *space = H5Aget_space(*a);
    if (*space < 0) {
        cnn_status st = cnn_fail(CNN_ERR_FORMAT, "%s: %s: attribute %s cannot be read: %s", file,
                                 where, attr, hdf5_reason(reason));
        if (*t >= 0)
            H5Tclose(*t);
        if (*a >= 0)
            H5Aclose(*a);
        *a = *t = H5I_INVALID_HID;
        return st;
    }
    return CNN_OK;
}

static void close_attr(hid_t a, hid_t t, hid_t space)
{
    if (space >= 0)
        H5Sclose(space);
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
}

cnn_status cnn_h5_read_string_attr(hid_t obj, const char *attr, const char *file,
                                   const char *where, size_t max, char **out)
{
    *out = NULL;
    hid_t a, t, space;
    cnn_status st = open_attr(obj, attr, file, where, &a, &t, &space);
    if (st || a < 0)
        return st;
    hssize_t count = H5Sget_simple_extent_npoints(space);
    if (H5Tget_class(t) != H5T_STRING || count != 1)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: %s: attribute %s: expected a string, got %s", file,
                      where, attr, H5Tget_class(t) != H5T_STRING ? "another type"
                                                                 : "a list of strings");
    else
        st = read_strings(a, t, space, 1, file, where, attr, max, out);
    close_attr(a, t, space);
    return st;
}

void cnn_h5_free_strings(char **s, int n)
{
    for (int i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
}

/* Appends the strings of one attribute to *list. */
static cnn_status append_list(hid_t obj, const char *attr, const char *file, const char *where,
                              char ***list, int *n, bool *found)
{
    hid_t a, t, space;
    *found = false;
    cnn_status st = open_attr(obj, attr, file, where, &a, &t, &space);
    if (st || a < 0)
        return st;
    *found = true;
    hssize_t count = H5Sget_simple_extent_npoints(space);
    int rank = H5Sget_simple_extent_ndims(space);
    H5T_class_t cls = H5Tget_class(t);
    if (count == 0 && rank == 1) {
        /* h5py's empty list: a float64 array of no elements */
    } else if (cls != H5T_STRING || rank != 1 || count < 0) {
        st = cnn_fail(CNN_ERR_FORMAT, "%s: %s: attribute %s: expected a list of strings", file,
                      where, attr);
    } else if (count > MAX_LIST_ITEMS - *n) {
        st = cnn_fail(CNN_ERR_FORMAT, "%s: %s: attribute %s: more than %d names", file, where,
                      attr, MAX_LIST_ITEMS);
    } else {
        char **grown = realloc(*list, (size_t)(*n + count) * sizeof **list);
        if (!grown) {
            st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: %s: out of memory", file, where);
        } else {
            *list = grown;
            memset(grown + *n, 0, (size_t)count * sizeof *grown);
            st = read_strings(a, t, space, count, file, where, attr, MAX_NAME_BYTES, grown + *n);
            *n += (int)count;
        }
    }
    close_attr(a, t, space);
    return st;
}

cnn_status cnn_h5_read_string_list(hid_t obj, const char *attr, const char *file,
                                   const char *where, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    bool found;
    cnn_status st = append_list(obj, attr, file, where, out, n, &found);
    /* Keras splits a list too large for one attribute into attr0, attr1, ... */
    for (int chunk = 0; !st && !found && chunk < MAX_LIST_ITEMS; chunk++) {
        char name[128];
        snprintf(name, sizeof name, "%.100s%d", attr, chunk);
        st = append_list(obj, name, file, where, out, n, &found);
        if (!found)
            break;
        found = false;
    }
    if (st) {
        cnn_h5_free_strings(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return st;
}

/* ---- Float datasets ------------------------------------------------------------- */

static void format_dims(char *buf, size_t cap, int rank, const int64_t *dims)
{
    size_t used = (size_t)snprintf(buf, cap, "(");
    for (int d = 0; d < rank && used < cap; d++)
        used += (size_t)snprintf(buf + used, cap - used, d ? ", %lld" : "%lld", (long long)dims[d]);
    if (used < cap)
        snprintf(buf + used, cap - used, rank == 1 ? ",)" : ")");
}

static hid_t open_dataset(hid_t loc, const char *path)
{
    if (!cnn_h5_exists(loc, path))
        return H5I_INVALID_HID;
    hid_t dapl = cnn_h5_dapl();
    hid_t d = dapl >= 0 ? H5Dopen2(loc, path, dapl) : H5I_INVALID_HID;
    if (dapl >= 0)
        H5Pclose(dapl);
    return d;
}

static cnn_status shape_of(hid_t d, const char *path, const char *file, int *rank, int64_t *dims)
{
    hid_t space = H5Dget_space(d);
    int r = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    hsize_t h[H5S_MAX_RANK];
    if (r >= 0 && r <= CNN_MAX_RANK && H5Sget_simple_extent_dims(space, h, NULL) == r) {
        for (int i = 0; i < r; i++)
            dims[i] = h[i] > (hsize_t)INT64_MAX ? -1 : (int64_t)h[i];
    } else {
        r = -1;
    }
    if (space >= 0)
        H5Sclose(space);
    H5Eclear2(H5E_DEFAULT);
    if (r < 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s: a dataset of rank more than %d or a damaged"
                        " dataspace", file, path, CNN_MAX_RANK);
    *rank = r;
    return CNN_OK;
}

cnn_status cnn_h5_dataset_shape(hid_t loc, const char *path, const char *file, int *rank,
                                int64_t *dims)
{
    hid_t d = open_dataset(loc, path);
    if (d < 0) {
        H5Eclear2(H5E_DEFAULT);
        return cnn_fail(CNN_ERR_FORMAT, "%s: no dataset %s", file, path);
    }
    cnn_status st = shape_of(d, path, file, rank, dims);
    H5Dclose(d);
    return st;
}

/* The data must be in this file and decodable by HDF5's own filters. */
static cnn_status check_storage(hid_t d, const char *path, const char *file)
{
    char reason[160] = "";
    hid_t dcpl = H5Dget_create_plist(d);
    if (dcpl < 0)
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s: cannot read its storage properties: %s", file,
                        path, hdf5_reason(reason));
    cnn_status st = CNN_OK;
    H5D_layout_t layout = H5Pget_layout(dcpl);
    int external = H5Pget_external_count(dcpl), nfilters = H5Pget_nfilters(dcpl);
    if (layout == H5D_VIRTUAL || layout < 0)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: %s: a virtual dataset (data in other files) is not"
                      " supported", file, path);
    else if (external != 0)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: %s: data stored in external files are not supported",
                      file, path);
    for (int i = 0; !st && i < nfilters; i++) {
        unsigned flags, cd[8];
        size_t ncd = 8;
        char fname[64];
        H5Z_filter_t f = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof fname,
                                        fname, NULL);
        if (f != H5Z_FILTER_DEFLATE && f != H5Z_FILTER_SHUFFLE && f != H5Z_FILTER_FLETCHER32
            && f != H5Z_FILTER_NBIT && f != H5Z_FILTER_SCALEOFFSET)
            st = cnn_fail(CNN_ERR_FORMAT, "%s: %s: compression filter %d is not supported (only"
                          " HDF5's own: deflate, shuffle, fletcher32, nbit, scaleoffset)",
                          file, path, (int)f);
    }
    if (nfilters < 0)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: %s: cannot read its filters: %s", file, path,
                      hdf5_reason(reason));
    H5Pclose(dcpl);
    return st;
}

cnn_status cnn_h5_read_floats(hid_t loc, const char *path, const char *file, const char *what,
                              int rank, const int64_t *dims, float *dst)
{
    char reason[160] = "", want[96], got[96];
    hid_t d = open_dataset(loc, path);
    if (d < 0) {
        H5Eclear2(H5E_DEFAULT);
        return cnn_fail(CNN_ERR_FORMAT, "%s: %s: no dataset %s", file, what, path);
    }
    int64_t have[CNN_MAX_RANK];
    int have_rank;
    cnn_status st = shape_of(d, path, file, &have_rank, have);
    bool same = !st && have_rank == rank;
    for (int i = 0; same && i < rank; i++)
        same = have[i] == dims[i];
    if (!st && !same) {
        format_dims(want, sizeof want, rank, dims);
        format_dims(got, sizeof got, have_rank, have);
        st = cnn_fail(CNN_ERR_FORMAT, "%s: %s: %s has shape %s, the architecture needs %s", file,
                      what, path, got, want);
    }
    hid_t t = st ? H5I_INVALID_HID : H5Dget_type(d);
    if (!st && (t < 0 || H5Tget_class(t) != H5T_FLOAT))
        st = cnn_fail(CNN_ERR_FORMAT, "%s: %s: %s is not a floating-point dataset", file, what,
                      path);
    if (t >= 0)
        H5Tclose(t);
    if (!st)
        st = check_storage(d, path, file);
    if (!st && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0)
        st = cnn_fail(CNN_ERR_FORMAT, "%s: %s: %s cannot be read: %s", file, what, path,
                      hdf5_reason(reason));
    H5Dclose(d);
    int64_t n = 1;
    for (int i = 0; !st && i < rank; i++)
        n *= dims[i];
    for (int64_t i = 0; !st && i < n; i++)
        if (!isfinite(dst[i]))
            st = cnn_fail(CNN_ERR_NUMERIC, "%s: %s: %s: value %lld is %s", file, what, path,
                          (long long)i, isnan(dst[i]) ? "NaN" : "infinite");
    H5Eclear2(H5E_DEFAULT);
    return st;
}

/* ---- Writers ---------------------------------------------------------------------- */

static hid_t intermediate_lcpl(void)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl >= 0 && (H5Pset_create_intermediate_group(lcpl, 1) < 0
                      || H5Pset_char_encoding(lcpl, H5T_CSET_UTF8) < 0)) {
        H5Pclose(lcpl);
        return H5I_INVALID_HID;
    }
    return lcpl;
}

static cnn_status write_failed(const char *file, const char *what, const char *path)
{
    char reason[160] = "";
    return cnn_fail(CNN_ERR_IO, "%s: cannot write %s %s: %s", file, what, path,
                    hdf5_reason(reason));
}

cnn_status cnn_h5_create_group(hid_t loc, const char *path, const char *file, hid_t *out)
{
    hid_t lcpl = intermediate_lcpl();
    *out = lcpl >= 0 ? H5Gcreate2(loc, path, lcpl, H5P_DEFAULT, H5P_DEFAULT) : H5I_INVALID_HID;
    if (lcpl >= 0)
        H5Pclose(lcpl);
    return *out < 0 ? write_failed(file, "group", path) : CNN_OK;
}

static cnn_status write_attr(hid_t obj, const char *attr, hid_t type, hid_t space,
                             const void *data, const char *file)
{
    hid_t a = H5Acreate2(obj, attr, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t w = a >= 0 ? H5Awrite(a, type, data) : -1;
    if (a >= 0)
        H5Aclose(a);
    return w < 0 ? write_failed(file, "attribute", attr) : CNN_OK;
}

cnn_status cnn_h5_write_string_attr(hid_t obj, const char *attr, const char *text, bool utf8,
                                    const char *file)
{
    hid_t t = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR);
    cnn_status st;
    if (t < 0 || space < 0 || H5Tset_size(t, H5T_VARIABLE) < 0
        || H5Tset_cset(t, utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII) < 0)
        st = write_failed(file, "attribute", attr);
    else
        st = write_attr(obj, attr, t, space, &text, file);
    if (space >= 0)
        H5Sclose(space);
    if (t >= 0)
        H5Tclose(t);
    return st;
}

cnn_status cnn_h5_write_string_list(hid_t obj, const char *attr, const char *const *s, int n,
                                    const char *file)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t space = H5Screate_simple(1, dims, NULL);
    if (space < 0)
        return write_failed(file, "attribute", attr);
    cnn_status st;
    if (n == 0) {
        double none = 0;
        st = write_attr(obj, attr, H5T_IEEE_F64LE, space, &none, file);
        H5Sclose(space);
        return st;
    }
    size_t width = 1;
    for (int i = 0; i < n; i++)
        width = strlen(s[i]) > width ? strlen(s[i]) : width;
    char *buf = calloc((size_t)n, width);
    hid_t t = H5Tcopy(H5T_C_S1);
    if (!buf || t < 0 || H5Tset_size(t, width) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0) {
        st = cnn_fail(CNN_ERR_NO_MEMORY, "%s: out of memory writing %s", file, attr);
    } else {
        for (int i = 0; i < n; i++)
            memcpy(buf + (size_t)i * width, s[i], strlen(s[i]));
        st = write_attr(obj, attr, t, space, buf, file);
    }
    if (t >= 0)
        H5Tclose(t);
    free(buf);
    H5Sclose(space);
    return st;
}

static cnn_status write_dataset(hid_t loc, const char *path, hid_t ftype, hid_t mtype, int rank,
                                const int64_t *dims, const void *data, const char *file)
{
    hsize_t h[CNN_MAX_RANK];
    for (int i = 0; i < rank; i++)
        h[i] = (hsize_t)dims[i];
    hid_t space = rank ? H5Screate_simple(rank, h, NULL) : H5Screate(H5S_SCALAR);
    hid_t lcpl = intermediate_lcpl();
    hid_t d = space >= 0 && lcpl >= 0
                  ? H5Dcreate2(loc, path, ftype, space, lcpl, H5P_DEFAULT, H5P_DEFAULT)
                  : H5I_INVALID_HID;
    herr_t w = d >= 0 ? H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
    if (d >= 0)
        H5Dclose(d);
    if (lcpl >= 0)
        H5Pclose(lcpl);
    if (space >= 0)
        H5Sclose(space);
    return w < 0 ? write_failed(file, "dataset", path) : CNN_OK;
}

cnn_status cnn_h5_write_floats(hid_t loc, const char *path, int rank, const int64_t *dims,
                               const float *data, const char *file)
{
    return write_dataset(loc, path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, rank, dims, data, file);
}

cnn_status cnn_h5_write_i64(hid_t loc, const char *path, int64_t value, const char *file)
{
    return write_dataset(loc, path, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, NULL, &value, file);
}
