/* Pixel counts of every (ground-truth segment, predicted segment) pair, in one pass over the
 * pixels. The numpy paths need five (ids, two gathers to dense indices, their sum,
 * np.bincount). Optional: coco_panoptic.py and panoptic_quality.py use numpy when this module
 * was not built, and the tests check that both give the same results.
 *
 * For the COCO folder evaluator (segment id = R + 256 G + 65536 B, at most 65533 listed ids
 * per side, each in [1, 2^24 - 1]):
 *
 *   count_scanline_pairs(gt_scanlines, gt_channels, pred_scanlines, pred_channels, width,
 *                        height, gt_ids, pred_ids, out)
 *     reads the inflated image data of two 8-bit, non-interlaced RGB / RGBA PNGs (each row: a
 *     filter type byte, then the filtered row) and undoes the PNG filters row by row while
 *     counting, so that no decoded image is ever stored; the caller inflates the data (zlib-ng
 *     inflates these files several times faster than the zlib inside the PNG decoders).
 *   count_pairs(gt_pixels, gt_channels, pred_pixels, pred_channels, gt_ids, pred_ids, out)
 *     the same from decoded pixels (other PNGs): C-contiguous uint8 buffers of the same number
 *     of pixels, 3 (RGB) or 4 (RGBA, alpha ignored) bytes each.
 *
 *   Both add to `out`, a writable C-contiguous int64 buffer of (len(gt_ids) + 2) *
 *   (len(pred_ids) + 2) counts zeroed by the caller, row-major [gt index, pred index]: index 0
 *   counts ids the list does not hold, 1 void (id 0), k + 2 the k-th listed id. After an error
 *   (ValueError: an unknown filter type) it holds partial counts.
 *
 * For the streaming PanopticQuality:
 *
 *   count_value_pairs(gt_map, pred_map) -> (gt_values, pred_values, counts, minimum)
 *     two int32 or int64 label maps of the same size in; the distinct (gt value, pred value)
 *     pairs out with their pixel counts (three bytes objects of int64, in order of first
 *     appearance) and the smallest value of either map (the caller rejects negative values).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NUM_IDS (1u << 24)
#define MAX_LISTED 65533

static int get_buffer(PyObject *object, Py_buffer *view, int writable, const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, view, flags) != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous%s buffer.", name,
                     writable ? " writable" : "");
        return -1;
    }
    return 0;
}

/* Dense index per 24-bit id: 0 for unlisted ids, 1 for void, k + 2 for ids[k]. calloc gives
 * zero pages the OS maps on first touch, so only the pages of ids that occur cost memory. */
static uint16_t *index_table(const int64_t *ids, Py_ssize_t count) {
    uint16_t *table = calloc(NUM_IDS, sizeof(uint16_t));
    if (table == NULL) return NULL;
    table[0] = 1;
    for (Py_ssize_t k = 0; k < count; ++k) table[ids[k]] = (uint16_t)(k + 2);
    return table;
}

static int check_ids(const Py_buffer *view, const char *name) {
    Py_ssize_t count = view->len / (Py_ssize_t)sizeof(int64_t);
    const int64_t *ids = view->buf;
    if (view->len % (Py_ssize_t)sizeof(int64_t) != 0 || count > MAX_LISTED) {
        PyErr_Format(PyExc_ValueError, "%s must hold at most %d int64 ids.", name, MAX_LISTED);
        return -1;
    }
    for (Py_ssize_t k = 0; k < count; ++k) {
        if (ids[k] < 1 || ids[k] >= (int64_t)NUM_IDS) {
            PyErr_Format(PyExc_ValueError, "%s[%zd] = %lld is not in [1, 2^24 - 1].", name, k,
                         (long long)ids[k]);
            return -1;
        }
    }
    return 0;
}

/* R + 256 G + 65536 B of the pixel at p: one unaligned 32-bit load, masked (`whole` false:
 * the last pixel of an RGB buffer, whose fourth byte lies past the end, is read bytewise). */
static inline __attribute__((always_inline)) uint32_t pixel_id(const uint8_t *p, int whole) {
    if (whole) {
        uint32_t word;
        memcpy(&word, p, sizeof(word));
#if PY_BIG_ENDIAN
        word = __builtin_bswap32(word);
#endif
        return word & 0xFFFFFFu;
    }
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
}

/* Segment maps are piecewise constant: while a pixel's ids repeat those of the pixel before,
 * no table is read and the count of the pair grows in a register (incrementing the count in
 * memory would chain every pixel on one store-to-load dependency). */
typedef struct {
    uint32_t last_gt, last_pred;
    Py_ssize_t row, column, pair;
    int64_t run;
} Counter;

static inline __attribute__((always_inline)) void count_pixel(
    Counter *c, uint32_t gt_id, uint32_t pred_id, const uint16_t *gt_table,
    const uint16_t *pred_table, Py_ssize_t columns, int64_t *counts) {
    if (gt_id != c->last_gt || pred_id != c->last_pred) {
        if (gt_id != c->last_gt) {
            c->last_gt = gt_id;
            c->row = (Py_ssize_t)gt_table[gt_id] * columns;
        }
        if (pred_id != c->last_pred) {
            c->last_pred = pred_id;
            c->column = pred_table[pred_id];
        }
        counts[c->pair] += c->run;
        c->pair = c->row + c->column;
        c->run = 0;
    }
    ++c->run;
}

/* The loop over the pixels; inlined with constant channel counts at each call, so that the
 * compiler makes one specialized loop per combination. */
static inline __attribute__((always_inline)) void count_loop(
    const uint8_t *gt, int gt_channels, const uint8_t *pred, int pred_channels,
    Py_ssize_t num_pixels, const uint16_t *gt_table, const uint16_t *pred_table,
    Py_ssize_t columns, int64_t *counts) {
    Counter c = {UINT32_MAX, UINT32_MAX, 0, 0, 0, 0};
    Py_ssize_t i = 0;
    for (; i + 1 < num_pixels; ++i) {
        count_pixel(&c, pixel_id(gt + i * gt_channels, 1), pixel_id(pred + i * pred_channels, 1),
                    gt_table, pred_table, columns, counts);
    }
    for (; i < num_pixels; ++i) {
        count_pixel(&c, pixel_id(gt + i * gt_channels, gt_channels == 4),
                    pixel_id(pred + i * pred_channels, pred_channels == 4), gt_table, pred_table,
                    columns, counts);
    }
    counts[c.pair] += c.run;
}

/* What both entry points share: the five buffers (two images, two id lists, the counts), the
 * channel counts and the two dense-index tables. */
typedef struct {
    Py_buffer views[5];
    int acquired;
    int channels[2];
    Py_ssize_t columns;
    uint16_t *gt_table, *pred_table;
} Call;

/* Acquires the buffers and checks what does not depend on the image layout; 0 or -1 (with a
 * Python error set). end_call must follow either way. */
static int begin_call(Call *call, PyObject *const objects[5], const char *const names[5]) {
    for (; call->acquired < 5; ++call->acquired) {
        int k = call->acquired;
        if (get_buffer(objects[k], &call->views[k], k == 4, names[k]) != 0) return -1;
    }
    for (int side = 0; side < 2; ++side) {
        if (call->channels[side] != 3 && call->channels[side] != 4) {
            PyErr_Format(PyExc_ValueError, "Channels must be 3 or 4. Received %d and %d.",
                         call->channels[0], call->channels[1]);
            return -1;
        }
    }
    if (check_ids(&call->views[2], names[2]) != 0 || check_ids(&call->views[3], names[3]) != 0)
        return -1;
    Py_ssize_t rows = call->views[2].len / (Py_ssize_t)sizeof(int64_t) + 2;
    call->columns = call->views[3].len / (Py_ssize_t)sizeof(int64_t) + 2;
    if (call->views[4].len != rows * call->columns * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_Format(PyExc_ValueError, "out must hold %zd x %zd int64 counts. Received %zd bytes.",
                     rows, call->columns, call->views[4].len);
        return -1;
    }
    call->gt_table = index_table(call->views[2].buf, rows - 2);
    call->pred_table = index_table(call->views[3].buf, call->columns - 2);
    if (call->gt_table == NULL || call->pred_table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static PyObject *end_call(Call *call, PyObject *result) {
    free(call->gt_table);
    free(call->pred_table);
    for (int k = 0; k < call->acquired; ++k) PyBuffer_Release(&call->views[k]);
    return result;
}

/* One specialized loop per channel combination (the loops are inlined with constants). */
#define DISPATCH(channels, COUNT)                                  \
    do {                                                           \
        if ((channels)[0] == 3 && (channels)[1] == 3) COUNT(3, 3); \
        else if ((channels)[0] == 3) COUNT(3, 4);                  \
        else if ((channels)[1] == 3) COUNT(4, 3);                  \
        else COUNT(4, 4);                                          \
    } while (0)

static PyObject *count_pairs(PyObject *self, PyObject *args) {
    (void)self;
    static const char *const names[5] = {"gt_pixels", "pred_pixels", "gt_ids", "pred_ids",
                                         "out"};
    PyObject *objects[5];
    Call call = {0};
    if (!PyArg_ParseTuple(args, "OiOiOOO", &objects[0], &call.channels[0], &objects[1],
                          &call.channels[1], &objects[2], &objects[3], &objects[4])) {
        return NULL;
    }
    if (begin_call(&call, objects, names) != 0) return end_call(&call, NULL);
    const Py_buffer *views = call.views;
    Py_ssize_t num_pixels = views[0].len / call.channels[0];
    if (views[0].len % call.channels[0] != 0 || views[1].len != num_pixels * call.channels[1]) {
        PyErr_Format(PyExc_ValueError,
                     "gt_pixels (%zd bytes, %d per pixel) and pred_pixels (%zd bytes, %d per "
                     "pixel) must hold the same number of pixels.",
                     views[0].len, call.channels[0], views[1].len, call.channels[1]);
        return end_call(&call, NULL);
    }
    const uint8_t *gt = views[0].buf, *pred = views[1].buf;
    int64_t *counts = views[4].buf;
    Py_BEGIN_ALLOW_THREADS
#define COUNT(G, P) \
    count_loop(gt, G, pred, P, num_pixels, call.gt_table, call.pred_table, call.columns, counts)
    DISPATCH(call.channels, COUNT);
#undef COUNT
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    return end_call(&call, Py_None);
}

/* Undoes the PNG filter of one row (PNG spec, section 9): `filtered` starts with the filter
 * type byte, `prior` is the previous decoded row (zeros above the first row). -1 on an unknown
 * filter type. */
static int unfilter_row(const uint8_t *filtered, const uint8_t *prior, uint8_t *row,
                        Py_ssize_t stride, int bpp) {
    const uint8_t *in = filtered + 1;
    Py_ssize_t i;
    switch (filtered[0]) {
    case 0:
        memcpy(row, in, stride);
        return 0;
    case 1:
        for (i = 0; i < bpp; ++i) row[i] = in[i];
        for (; i < stride; ++i) row[i] = (uint8_t)(in[i] + row[i - bpp]);
        return 0;
    case 2:
        for (i = 0; i < stride; ++i) row[i] = (uint8_t)(in[i] + prior[i]);
        return 0;
    case 3:
        for (i = 0; i < bpp; ++i) row[i] = (uint8_t)(in[i] + (prior[i] >> 1));
        for (; i < stride; ++i) row[i] = (uint8_t)(in[i] + ((row[i - bpp] + prior[i]) >> 1));
        return 0;
    case 4:
        for (i = 0; i < bpp; ++i) row[i] = (uint8_t)(in[i] + prior[i]);
        for (; i < stride; ++i) {
            int a = row[i - bpp], b = prior[i], c = prior[i - bpp];
            int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
            int predicted = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
            row[i] = (uint8_t)(in[i] + predicted);
        }
        return 0;
    default:
        return -1;
    }
}

static inline __attribute__((always_inline)) void count_row(
    Counter *c, const uint8_t *gt, int gt_channels, const uint8_t *pred, int pred_channels,
    Py_ssize_t width, const uint16_t *gt_table, const uint16_t *pred_table, Py_ssize_t columns,
    int64_t *counts) {
    /* Row buffers have a spare byte, so every pixel is one 32-bit load. */
    for (Py_ssize_t x = 0; x < width; ++x) {
        count_pixel(c, pixel_id(gt + x * gt_channels, 1), pixel_id(pred + x * pred_channels, 1),
                    gt_table, pred_table, columns, counts);
    }
}

static PyObject *count_scanline_pairs(PyObject *self, PyObject *args) {
    (void)self;
    static const char *const names[5] = {"gt_scanlines", "pred_scanlines", "gt_ids",
                                         "pred_ids", "out"};
    PyObject *objects[5];
    Call call = {0};
    Py_ssize_t width, height;
    if (!PyArg_ParseTuple(args, "OiOinnOOO", &objects[0], &call.channels[0], &objects[1],
                          &call.channels[1], &width, &height, &objects[2], &objects[3],
                          &objects[4])) {
        return NULL;
    }
    if (begin_call(&call, objects, names) != 0) return end_call(&call, NULL);
    const int *channels = call.channels;
    if (width < 1 || height < 1 || width > (PY_SSIZE_T_MAX / 8) / height) {
        PyErr_Format(PyExc_ValueError, "Invalid image size %zd x %zd.", width, height);
        return end_call(&call, NULL);
    }
    Py_ssize_t strides[2] = {width * channels[0], width * channels[1]};
    for (int side = 0; side < 2; ++side) {
        if (call.views[side].len != height * (strides[side] + 1)) {
            PyErr_Format(PyExc_ValueError,
                         "%s must hold %zd rows of 1 + %zd bytes (%zd bytes). Received %zd.",
                         names[side], height, strides[side], height * (strides[side] + 1),
                         call.views[side].len);
            return end_call(&call, NULL);
        }
    }
    /* Per side: the previous and the current decoded row, each with a spare byte; the
     * previous row starts as zeros (the row "above" the first). */
    Py_ssize_t row_size = (strides[0] > strides[1] ? strides[0] : strides[1]) + 1;
    uint8_t *rows = calloc(4 * row_size, 1);
    if (rows == NULL) {
        PyErr_NoMemory();
        return end_call(&call, NULL);
    }

    int64_t *counts = call.views[4].buf;
    int bad_row = -1, bad_side = 0;
    Py_BEGIN_ALLOW_THREADS
    Counter c = {UINT32_MAX, UINT32_MAX, 0, 0, 0, 0};
    uint8_t *prior[2] = {rows, rows + row_size};
    uint8_t *current[2] = {rows + 2 * row_size, rows + 3 * row_size};
    for (Py_ssize_t y = 0; y < height && bad_row < 0; ++y) {
        for (int side = 0; side < 2 && bad_row < 0; ++side) {
            const uint8_t *filtered =
                (const uint8_t *)call.views[side].buf + y * (strides[side] + 1);
            if (unfilter_row(filtered, prior[side], current[side], strides[side],
                             channels[side]) != 0) {
                bad_row = (int)y;
                bad_side = side;
            }
        }
        if (bad_row >= 0) break;
#define COUNT(G, P) count_row(&c, current[0], G, current[1], P, width, call.gt_table, \
                              call.pred_table, call.columns, counts)
        DISPATCH(channels, COUNT);
#undef COUNT
        for (int side = 0; side < 2; ++side) {
            uint8_t *swap = prior[side];
            prior[side] = current[side];
            current[side] = swap;
        }
    }
    counts[c.pair] += c.run;
    Py_END_ALLOW_THREADS
    free(rows);
    if (bad_row >= 0) {
        PyErr_Format(PyExc_ValueError, "%s: row %d has an unknown PNG filter type.",
                     names[bad_side], bad_row);
        return end_call(&call, NULL);
    }
    Py_INCREF(Py_None);
    return end_call(&call, Py_None);
}

/* Distinct (gt, pred) value pairs with their counts: open addressing over a power-of-two
 * table that doubles at half load; pairs keep their order of first appearance. */
typedef struct {
    int64_t *gt, *pred, *counts; /* pairs in order of appearance */
    Py_ssize_t size, capacity;   /* pairs, table slots (the pair arrays hold capacity / 2) */
    Py_ssize_t *slots;           /* pair index + 1 per slot, 0 = empty */
} PairTable;

static inline Py_ssize_t pair_hash(int64_t gt, int64_t pred, Py_ssize_t mask) {
    uint64_t h = (uint64_t)gt * 0x9E3779B97F4A7C15ull ^ ((uint64_t)pred + 0x632BE59BD9B4E019ull);
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return (Py_ssize_t)((h ^ (h >> 32)) & (uint64_t)mask);
}

static int pair_table_resize(PairTable *t, Py_ssize_t capacity) {
    Py_ssize_t *slots = calloc(capacity, sizeof(Py_ssize_t));
    int64_t *gt = realloc(t->gt, capacity / 2 * sizeof(int64_t));
    if (gt) t->gt = gt;
    int64_t *pred = realloc(t->pred, capacity / 2 * sizeof(int64_t));
    if (pred) t->pred = pred;
    int64_t *counts = realloc(t->counts, capacity / 2 * sizeof(int64_t));
    if (counts) t->counts = counts;
    if (!slots || !gt || !pred || !counts) {
        free(slots);
        return -1;
    }
    for (Py_ssize_t k = 0; k < t->size; ++k) {
        Py_ssize_t slot = pair_hash(t->gt[k], t->pred[k], capacity - 1);
        while (slots[slot]) slot = (slot + 1) & (capacity - 1);
        slots[slot] = k + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->capacity = capacity;
    return 0;
}

static int pair_table_add(PairTable *t, int64_t gt, int64_t pred, int64_t count) {
    Py_ssize_t mask = t->capacity - 1, slot = pair_hash(gt, pred, mask);
    for (;; slot = (slot + 1) & mask) {
        Py_ssize_t k = t->slots[slot] - 1;
        if (k < 0) break;
        if (t->gt[k] == gt && t->pred[k] == pred) {
            t->counts[k] += count;
            return 0;
        }
    }
    if (2 * (t->size + 1) > t->capacity) {
        if (pair_table_resize(t, 2 * t->capacity) != 0) return -1;
        return pair_table_add(t, gt, pred, count);
    }
    t->gt[t->size] = gt;
    t->pred[t->size] = pred;
    t->counts[t->size] = count;
    t->slots[slot] = ++t->size;
    return 0;
}

/* Runs of equal (gt, pred) pairs are counted in registers and added to the table once. */
#define VALUE_PAIR_LOOP(GT_TYPE, PRED_TYPE)                                                  \
    do {                                                                                     \
        const GT_TYPE *g = (const GT_TYPE *)views[0].buf;                                   \
        const PRED_TYPE *p = (const PRED_TYPE *)views[1].buf;                               \
        int64_t run_gt = g[0], run_pred = p[0], run = 0;                                     \
        for (Py_ssize_t i = 0; i < num_pixels && !failed; ++i) {                             \
            int64_t a = g[i], b = p[i];                                                      \
            if (a != run_gt || b != run_pred) {                                              \
                failed = pair_table_add(&table, run_gt, run_pred, run) != 0;                 \
                minimum = run_gt < minimum ? run_gt : minimum;                               \
                minimum = run_pred < minimum ? run_pred : minimum;                           \
                run_gt = a;                                                                  \
                run_pred = b;                                                                \
                run = 0;                                                                     \
            }                                                                                \
            ++run;                                                                           \
        }                                                                                    \
        if (!failed) failed = pair_table_add(&table, run_gt, run_pred, run) != 0;            \
        minimum = run_gt < minimum ? run_gt : minimum;                                       \
        minimum = run_pred < minimum ? run_pred : minimum;                                   \
    } while (0)

/* Element size (4 or 8) of a buffer of int32 / int64 values, or 0 for anything else. */
static int integer_size(const Py_buffer *view) {
    const char *format = view->format ? view->format : "B";
    if (*format == '<' || *format == '=' || *format == '@') ++format;
    if (format[1] != '\0') return 0;
    if ((*format == 'i' || *format == 'l' || *format == 'q') && view->itemsize == 4) return 4;
    if ((*format == 'i' || *format == 'l' || *format == 'q') && view->itemsize == 8) return 8;
    return 0;
}

static PyObject *count_value_pairs(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objects[2];
    if (!PyArg_ParseTuple(args, "OO", &objects[0], &objects[1])) return NULL;
    Py_buffer views[2];
    int acquired = 0;
    PyObject *result = NULL;
    PairTable table = {NULL, NULL, NULL, 0, 0, NULL};
    for (; acquired < 2; ++acquired) {
        if (PyObject_GetBuffer(objects[acquired], &views[acquired],
                               PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) {
            goto done;
        }
    }
    int sizes[2] = {integer_size(&views[0]), integer_size(&views[1])};
    if (!sizes[0] || !sizes[1]) {
        PyErr_SetString(PyExc_TypeError, "Label maps must be C-contiguous int32 or int64 arrays.");
        goto done;
    }
    Py_ssize_t num_pixels = views[0].len / sizes[0];
    if (views[1].len / sizes[1] != num_pixels) {
        PyErr_Format(PyExc_ValueError, "The label maps hold %zd and %zd values.", num_pixels,
                     views[1].len / sizes[1]);
        goto done;
    }
    if (pair_table_resize(&table, 256) != 0) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t minimum = INT64_MAX;
    int failed = 0;
    if (num_pixels > 0) {
        Py_BEGIN_ALLOW_THREADS
        if (sizes[0] == 4 && sizes[1] == 4) VALUE_PAIR_LOOP(int32_t, int32_t);
        else if (sizes[0] == 4) VALUE_PAIR_LOOP(int32_t, int64_t);
        else if (sizes[1] == 4) VALUE_PAIR_LOOP(int64_t, int32_t);
        else VALUE_PAIR_LOOP(int64_t, int64_t);
        Py_END_ALLOW_THREADS
    }
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t bytes = table.size * (Py_ssize_t)sizeof(int64_t);
    result = Py_BuildValue("(y#y#y#L)", (const char *)table.gt, bytes, (const char *)table.pred,
                           bytes, (const char *)table.counts, bytes,
                           (long long)(num_pixels ? minimum : 0));

done:
    free(table.gt);
    free(table.pred);
    free(table.counts);
    free(table.slots);
    for (int k = 0; k < acquired; ++k) PyBuffer_Release(&views[k]);
    return result;
}

static PyMethodDef methods[] = {
    {"count_pairs", count_pairs, METH_VARARGS,
     "count_pairs(gt_pixels, gt_channels, pred_pixels, pred_channels, gt_ids, pred_ids, out)\n"
     "Adds the pixel count of every (ground-truth index, predicted index) pair to out."},
    {"count_scanline_pairs", count_scanline_pairs, METH_VARARGS,
     "count_scanline_pairs(gt_scanlines, gt_channels, pred_scanlines, pred_channels, width,\n"
     "                     height, gt_ids, pred_ids, out)\n"
     "count_pairs on the inflated, still filtered data of two 8-bit RGB / RGBA PNGs."},
    {"count_value_pairs", count_value_pairs, METH_VARARGS,
     "count_value_pairs(gt_map, pred_map) -> (gt_values, pred_values, counts, minimum)\n"
     "Distinct (gt, pred) value pairs of two int32 / int64 label maps, with pixel counts."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pair_counts",
    "Segment-pair pixel counts of two decoded panoptic PNGs (see coco_panoptic.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pair_counts(void) { return PyModule_Create(&module); }
