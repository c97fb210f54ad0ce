/*
 * COCO run-length encoding <-> a window of the image, without expanding the full image.
 *
 * COCO's compressed RLE: column-major runs, zeros first; each run is written as little-endian 5-bit chunks
 * (+48), 0x20 = more chunks follow, 0x10 in the last chunk = negative; run m > 2 is stored as a delta to
 * run m - 2. These two functions read and write exactly that format (the same strings as pycocotools).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t *v;
    Py_ssize_t n, cap;
} Runs;

static int runs_push(Runs *r, int64_t value) {
    if (r->n == r->cap) {
        Py_ssize_t cap = r->cap ? 2 * r->cap : 64;
        int64_t *v = realloc(r->v, (size_t)cap * sizeof(int64_t));
        if (!v) return -1;
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n++] = value;
    return 0;
}

/* Parse a compressed counts string; -1 with a Python error set on malformed input. */
static int parse_counts(const char *s, Py_ssize_t len, Runs *out) {
    Py_ssize_t p = 0;
    while (p < len) {
        int64_t x = 0;
        int k = 0, more = 1;
        while (more) {
            if (p >= len) {
                PyErr_SetString(PyExc_ValueError, "RLE counts string is truncated (its last run is unfinished)");
                return -1;
            }
            int c = (unsigned char)s[p] - 48;
            if (c < 0 || c > 63 || k > 12) {
                PyErr_SetString(PyExc_ValueError, "RLE counts string holds a character outside COCO's alphabet");
                return -1;
            }
            x |= (int64_t)(c & 0x1f) << (5 * k);
            more = c & 0x20;
            p++;
            k++;
            if (!more && (c & 0x10)) x |= -((int64_t)1 << (5 * k));
        }
        if (out->n > 2) x += out->v[out->n - 2];
        if (x < 0) {
            PyErr_SetString(PyExc_ValueError, "RLE has a negative run length");
            return -1;
        }
        if (runs_push(out, x) < 0) {
            PyErr_NoMemory();
            return -1;
        }
    }
    return 0;
}

/* decode_window(counts: bytes|str, height, width, margin)
 *   -> (x0, y0, x1, y1, bytearray of the window, row-major) or None for an empty mask.
 * The window is the tight box of the foreground grown by `margin`, clipped to the image. */
static PyObject *decode_window(PyObject *self, PyObject *args) {
    const char *s;
    Py_ssize_t len, h, w, margin;
    if (!PyArg_ParseTuple(args, "s#nnn", &s, &len, &h, &w, &margin)) return NULL;
    if (h <= 0 || w <= 0 || margin < 0) {
        PyErr_SetString(PyExc_ValueError, "height and width must be positive and margin >= 0");
        return NULL;
    }
    Runs runs = {0};
    if (parse_counts(s, len, &runs) < 0) {
        free(runs.v);
        return NULL;
    }
    int64_t total = 0, hh = h;
    int64_t xmin = INT64_MAX, xmax = -1, ymin = INT64_MAX, ymax = -1;
    for (Py_ssize_t i = 0; i < runs.n; i++) {
        int64_t start = total, n = runs.v[i];
        total += n;
        if ((i & 1) && n > 0) {
            int64_t end = total - 1, c0 = start / hh, c1 = end / hh;
            if (c0 < xmin) xmin = c0;
            if (c1 > xmax) xmax = c1;
            if (c0 != c1) {
                ymin = 0;
                ymax = hh - 1;
            } else {
                if (start % hh < ymin) ymin = start % hh;
                if (end % hh > ymax) ymax = end % hh;
            }
        }
    }
    if (total != (int64_t)h * w) {
        free(runs.v);
        return PyErr_Format(PyExc_ValueError, "RLE runs cover %lld pixels, but size %zdx%zd has %lld", (long long)total,
                            h, w, (long long)h * w);
    }
    if (xmax < 0) {
        free(runs.v);
        Py_RETURN_NONE;
    }
    int64_t x0 = xmin - margin < 0 ? 0 : xmin - margin, x1 = xmax + 1 + margin > w ? w : xmax + 1 + margin;
    int64_t y0 = ymin - margin < 0 ? 0 : ymin - margin, y1 = ymax + 1 + margin > h ? h : ymax + 1 + margin;
    int64_t wh = y1 - y0, ww = x1 - x0;
    PyObject *buffer = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(wh * ww));
    if (!buffer) {
        free(runs.v);
        return NULL;
    }
    /* Mark each column piece [r0, r1) as +1 at row r0 and -1 at row r1, then sum down the rows: every write
       and the summation run along contiguous memory. */
    signed char *out = (signed char *)PyByteArray_AS_STRING(buffer);
    memset(out, 0, (size_t)(wh * ww));
    total = 0;
    for (Py_ssize_t i = 0; i < runs.n; i++) {
        int64_t start = total, n = runs.v[i];
        total += n;
        if (!(i & 1) || n == 0) continue;
        for (int64_t p = start; p < total;) {
            int64_t col = p / hh, row = p % hh;
            int64_t stop = (col + 1) * hh < total ? (col + 1) * hh : total; /* end of this piece in this column */
            int64_t r0 = row - y0, r1 = row + (stop - p) - y0, c = col - x0;
            out[r0 * ww + c] += 1;
            if (r1 < wh) out[r1 * ww + c] -= 1;
            p = stop;
        }
    }
    for (int64_t r = 1; r < wh; r++) {
        signed char *cur = out + r * ww, *prev = cur - ww;
        for (int64_t c = 0; c < ww; c++) cur[c] += prev[c];
    }
    free(runs.v);
    return Py_BuildValue("(LLLLN)", (long long)x0, (long long)y0, (long long)x1, (long long)y1, buffer);
}

static int write_run(char **buf, Py_ssize_t *n, Py_ssize_t *cap, int64_t x) {
    int more = 1;
    while (more) {
        if (*n + 1 >= *cap) {
            Py_ssize_t c = *cap * 2;
            char *b = realloc(*buf, (size_t)c);
            if (!b) return -1;
            *buf = b;
            *cap = c;
        }
        int c = (int)(x & 0x1f);
        x >>= 5;
        more = (c & 0x10) ? x != -1 : x != 0;
        if (more) c |= 0x20;
        (*buf)[(*n)++] = (char)(c + 48);
    }
    return 0;
}

/* encode_window(window: uint8 buffer, row-major (wh rows of ww), wh, ww, x0, y0, height, width) -> str
 * The full-image compressed RLE of a mask that is zero outside the window (nonzero = foreground).
 */
static PyObject *encode_window(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t wh, ww, x0, y0, h, w;
    if (!PyArg_ParseTuple(args, "y*nnnnnn", &view, &wh, &ww, &x0, &y0, &h, &w)) return NULL;
    if (view.len != wh * ww || x0 < 0 || y0 < 0 || x0 + ww > w || y0 + wh > h) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "the window does not fit the image or the buffer");
        return NULL;
    }
    const unsigned char *m = view.buf;
    /* Transitions (column, row) found row by row against the row above (rows -1 and wh are background),
       8 bytes at a time where nothing changes; then a counting sort by column puts them in RLE order. */
    Runs cols = {0}, rows = {0};
    unsigned char *zeros = calloc((size_t)ww + 1, 1);
    int64_t *count = calloc((size_t)ww + 1, sizeof(int64_t));
    int failed = !zeros || !count;
    for (Py_ssize_t r = 0; r <= wh && !failed; r++) {
        const unsigned char *cur = r < wh ? m + r * ww : zeros, *prev = r > 0 ? m + (r - 1) * ww : zeros;
        Py_ssize_t c = 0;
        for (; c + 8 <= ww; c += 8) {
            uint64_t a, b;
            memcpy(&a, cur + c, 8);
            memcpy(&b, prev + c, 8);
            if (a == b) continue;
            for (int j = 0; j < 8; j++)
                if ((cur[c + j] != 0) != (prev[c + j] != 0)) failed |= runs_push(&cols, c + j) | runs_push(&rows, r);
        }
        for (; c < ww; c++)
            if ((cur[c] != 0) != (prev[c] != 0)) failed |= runs_push(&cols, c) | runs_push(&rows, r);
    }
    PyBuffer_Release(&view);
    int64_t n = cols.n;
    int64_t *pos = failed ? NULL : malloc((size_t)(n + 1) * sizeof(int64_t));
    if (!pos) {
        free(zeros), free(count), free(cols.v), free(rows.v);
        return PyErr_NoMemory();
    }
    for (int64_t i = 0; i < n; i++) count[cols.v[i] + 1]++;
    for (Py_ssize_t c = 0; c < ww; c++) count[c + 1] += count[c];
    for (int64_t i = 0; i < n; i++) pos[count[cols.v[i]]++] = ((int64_t)x0 + cols.v[i]) * h + y0 + rows.v[i];
    free(zeros), free(count), free(cols.v), free(rows.v);
    /* A window as tall as the image: the 1->0 at the bottom of one column and the 0->1 at the top of the next
       land on the same pixel and cancel; a final 1->0 at the very end of the image is no transition. */
    int64_t k = 0, total = (int64_t)h * w;
    for (int64_t i = 0; i < n; i++) {
        if (k > 0 && pos[k - 1] == pos[i]) {
            k--;
            continue;
        }
        pos[k++] = pos[i];
    }
    if (k > 0 && pos[k - 1] == total) k--;
    Py_ssize_t length = 0, cap = 64 + (Py_ssize_t)k * 2;
    char *text = malloc((size_t)cap);
    failed = !text;
    int64_t last = 0, before_last = 0, previous = 0;
    for (int64_t i = 0; i <= k && !failed; i++) {
        int64_t run = (i < k ? pos[i] : total) - last;
        last = i < k ? pos[i] : total;
        int64_t x = i > 2 ? run - before_last : run; /* runs after the third are deltas to the run two before */
        before_last = previous;
        previous = run;
        failed = write_run(&text, &length, &cap, x);
    }
    free(pos);
    PyObject *result = failed ? PyErr_NoMemory() : PyUnicode_FromStringAndSize(text, length);
    free(text);
    return result;
}

static PyMethodDef methods[] = {
    {"decode_window", decode_window, METH_VARARGS, "Decode the window around an RLE's foreground."},
    {"encode_window", encode_window, METH_VARARGS, "Encode a window of a mask as full-image RLE counts."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rle", "COCO RLE window codec.", -1, methods};

PyMODINIT_FUNC PyInit__rle(void) { return PyModule_Create(&module); }
