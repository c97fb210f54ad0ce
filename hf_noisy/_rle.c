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
#include <math.h>
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

/* The window (tight box of the foreground grown by `margin`, clipped to the image) of a mask given as
 * run lengths (zeros first, column-major, covering h * w): (x0, y0, x1, y1, bytearray, row-major) or None
 * when the mask is empty. */
static PyObject *runs_window(const Runs *runs, int64_t h, int64_t w, int64_t margin) {
    int64_t total = 0;
    int64_t xmin = INT64_MAX, xmax = -1, ymin = INT64_MAX, ymax = -1;
    for (Py_ssize_t i = 0; i < runs->n; i++) {
        int64_t start = total, n = runs->v[i];
        total += n;
        if ((i & 1) && n > 0) {
            int64_t end = total - 1, c0 = start / h, c1 = end / h;
            if (c0 < xmin) xmin = c0;
            if (c1 > xmax) xmax = c1;
            if (c0 != c1) {
                ymin = 0;
                ymax = h - 1;
            } else {
                if (start % h < ymin) ymin = start % h;
                if (end % h > ymax) ymax = end % h;
            }
        }
    }
    if (total != h * w)
        return PyErr_Format(PyExc_ValueError, "RLE runs cover %lld pixels, but size %lldx%lld has %lld", (long long)total,
                            (long long)h, (long long)w, (long long)(h * w));
    if (xmax < 0) Py_RETURN_NONE;
    int64_t x0 = xmin - margin < 0 ? 0 : xmin - margin, x1 = xmax + 1 + margin > w ? w : xmax + 1 + margin;
    int64_t y0 = ymin - margin < 0 ? 0 : ymin - margin, y1 = ymax + 1 + margin > h ? h : ymax + 1 + margin;
    int64_t wh = y1 - y0, ww = x1 - x0;
    PyObject *buffer = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(wh * ww));
    if (!buffer) return NULL;
    /* Mark each column piece [r0, r1) as +1 at row r0 and -1 at row r1, then sum down the rows: every write
       and the summation run along contiguous memory. */
    signed char *out = (signed char *)PyByteArray_AS_STRING(buffer);
    memset(out, 0, (size_t)(wh * ww));
    total = 0;
    for (Py_ssize_t i = 0; i < runs->n; i++) {
        int64_t start = total, n = runs->v[i];
        total += n;
        if (!(i & 1) || n == 0) continue;
        for (int64_t p = start; p < total;) {
            int64_t col = p / h, row = p % h;
            int64_t stop = (col + 1) * h < total ? (col + 1) * h : total; /* end of this piece in this column */
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
    return Py_BuildValue("(LLLLN)", (long long)x0, (long long)y0, (long long)x1, (long long)y1, buffer);
}

static int check_size(Py_ssize_t h, Py_ssize_t w, Py_ssize_t margin) {
    if (h > 0 && w > 0 && margin >= 0 && (int64_t)h * w < ((int64_t)1 << 31)) return 0;
    PyErr_SetString(PyExc_ValueError, "height and width must be positive (at most 2**31 pixels) and margin >= 0");
    return -1;
}

/* decode_window(counts: bytes|str, height, width, margin) -> runs_window(...) of a compressed RLE. */
static PyObject *decode_window(PyObject *self, PyObject *args) {
    const char *s;
    Py_ssize_t len, h, w, margin;
    if (!PyArg_ParseTuple(args, "s#nnn", &s, &len, &h, &w, &margin) || check_size(h, w, margin) < 0) return NULL;
    Runs runs = {0};
    PyObject *result = parse_counts(s, len, &runs) < 0 ? NULL : runs_window(&runs, h, w, margin);
    free(runs.v);
    return result;
}

/* One toggle of pycocotools' rule between the points (u0, v0) and (u1, v1) of an edge walk (scaled by 5): the
 * step crosses a pixel centre's column when min(u) / 5 lands on it, and toggles that column from the first
 * pixel centre below min(v) on, clamped to [0, h]. The same double arithmetic as pycocotools. */
static int push_toggle(int u_low, int v_low, int64_t h, int64_t w, Runs *cols, Runs *rows) {
    const double scale = 5;
    double xd = ((double)u_low + .5) / scale - .5;
    if (floor(xd) != xd || xd < 0 || xd > w - 1) return 0;
    double yd = ((double)v_low + .5) / scale - .5;
    yd = yd < 0 ? 0 : yd > h ? h : yd;
    return runs_push(cols, (int64_t)xd) | runs_push(rows, (int64_t)ceil(yd));
}

/* Where one polygon toggles the mask, as (column, row) pairs, by pycocotools' rule (rleFrPoly): vertices are
 * scaled by 5 and rounded, and every edge is walked one step at a time along its major axis, from its lower
 * end; v(t) (or u(t)) on the minor axis is rounded from the line, and each step that moves u by one is a
 * candidate toggle (push_toggle). Consecutive edges meet at a shared point, so steps never cross edges and
 * each edge is walked on its own. Along x only every 5th step can land on a pixel centre, so only those
 * are computed. A zero-length edge has no step (pycocotools divides 0 by 0 there and never uses it). */
static int polygon_toggles(const double *xy, Py_ssize_t k, int64_t h, int64_t w, Runs *cols, Runs *rows) {
    const double scale = 5;
    for (Py_ssize_t j = 0; j < k; j++) {
        Py_ssize_t next = j + 1 < k ? j + 1 : 0;
        int xs = (int)(scale * xy[2 * j] + .5), ys = (int)(scale * xy[2 * j + 1] + .5);
        int xe = (int)(scale * xy[2 * next] + .5), ye = (int)(scale * xy[2 * next + 1] + .5);
        int dx = abs(xe - xs), dy = abs(ys - ye);
        if ((dx >= dy && xs > xe) || (dx < dy && ys > ye)) {
            int t = xs;
            xs = xe, xe = t, t = ys, ys = ye, ye = t;
        }
        if (dx >= dy && dx > 0) {
            double s = (double)(ye - ys) / dx;
            for (int t = ((2 - xs) % 5 + 5) % 5; t < dx; t += 5) { /* u = xs + t lands on a centre: t = 2 - xs mod 5 */
                int v0 = (int)(ys + s * t + .5), v1 = (int)(ys + s * (t + 1) + .5);
                if (push_toggle(xs + t, v0 < v1 ? v0 : v1, h, w, cols, rows) < 0) return -1;
            }
        } else if (dx < dy) {
            double s = (double)(xe - xs) / dy;
            int u0 = (int)(xs + .5);
            for (int t = 0; t < dy; t++) {
                int u1 = (int)(xs + s * (t + 1) + .5);
                if (u1 != u0 && push_toggle(u1 < u0 ? u1 : u0, ys + t, h, w, cols, rows) < 0) return -1;
                u0 = u1;
            }
        }
    }
    return 0;
}

/* Column-major positions col * h + row of (column, row) pairs, in order: a counting sort by column, then an
 * insertion sort of each column's few rows. Returns a malloc'ed array of cols->n entries, or NULL. */
static int64_t *sorted_positions(const Runs *cols, const Runs *rows, int64_t h) {
    int64_t n = cols->n, low = INT64_MAX, high = -1;
    for (int64_t i = 0; i < n; i++) {
        if (cols->v[i] < low) low = cols->v[i];
        if (cols->v[i] > high) high = cols->v[i];
    }
    int64_t *pos = malloc((size_t)(n + 1) * sizeof(int64_t));
    int64_t *start = n ? calloc((size_t)(high - low + 2), sizeof(int64_t)) : NULL;
    if (!pos || (n && !start)) {
        free(pos), free(start);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) start[cols->v[i] - low + 1]++;
    for (int64_t c = 0; c < high - low + 1; c++) start[c + 1] += start[c];
    for (int64_t i = 0; i < n; i++) pos[start[cols->v[i] - low]++] = cols->v[i] * h + rows->v[i];
    free(start);
    for (int64_t i = 1; i < n; i++) {
        int64_t value = pos[i], j = i;
        for (; j > 0 && pos[j - 1] > value; j--) pos[j] = pos[j - 1];
        pos[j] = value;
    }
    return pos;
}

static int compare_int64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* polygons_window(polygons: sequence of flat [x0, y0, x1, y1, ...] sequences, height, width, margin)
 *   -> runs_window(...) of their union, rasterised exactly as pycocotools' frPyObjects + merge. */
static PyObject *polygons_window(PyObject *self, PyObject *args) {
    PyObject *polygons;
    Py_ssize_t h, w, margin;
    if (!PyArg_ParseTuple(args, "Onnn", &polygons, &h, &w, &margin) || check_size(h, w, margin) < 0) return NULL;
    PyObject *outer = PySequence_Fast(polygons, "polygons must be a sequence of coordinate sequences");
    if (!outer) return NULL;
    Runs cols = {0}, rows = {0}, spans = {0}; /* spans: [start, end) pairs of foreground, all polygons */
    double *xy = NULL;
    PyObject *result = NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(outer);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *coords = PySequence_Fast(PySequence_Fast_GET_ITEM(outer, i), "a polygon must be a sequence of numbers");
        if (!coords) goto done;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(coords);
        if (n < 6 || n % 2) {
            Py_DECREF(coords);
            PyErr_Format(PyExc_ValueError, "polygon %zd has %zd coordinates; it needs an even number, at least 6", i, n);
            goto done;
        }
        double *grown = realloc(xy, (size_t)n * sizeof(double));
        if (!grown) {
            Py_DECREF(coords);
            PyErr_NoMemory();
            goto done;
        }
        xy = grown;
        for (Py_ssize_t j = 0; j < n; j++) {
            xy[j] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(coords, j));
            if (xy[j] == -1.0 && PyErr_Occurred()) break;
            if (!isfinite(xy[j]) || fabs(xy[j]) > 1e8) {
                PyErr_Format(PyExc_ValueError, "polygon %zd holds a non-finite or huge coordinate", i);
                break;
            }
        }
        Py_DECREF(coords);
        if (PyErr_Occurred()) goto done;
        cols.n = rows.n = 0;
        if (polygon_toggles(xy, n / 2, h, w, &cols, &rows) < 0) goto nomemory;
        int64_t *toggles = sorted_positions(&cols, &rows, h);
        if (!toggles) goto nomemory;
        /* Toggles at the same pixel cancel in pairs; the foreground lies between the 1st and 2nd remaining
           toggle, the 3rd and 4th, ..., and from an unpaired last one to the end of the image. */
        Py_ssize_t kept = 0;
        for (Py_ssize_t j = 0; j < cols.n; j++) {
            if (kept > 0 && toggles[kept - 1] == toggles[j]) kept--;
            else toggles[kept++] = toggles[j];
        }
        for (Py_ssize_t j = 0; j < kept; j += 2) {
            int64_t end = j + 1 < kept ? toggles[j + 1] : (int64_t)h * w;
            if (end > toggles[j] && (runs_push(&spans, toggles[j]) < 0 || runs_push(&spans, end) < 0)) {
                free(toggles);
                goto nomemory;
            }
        }
        free(toggles);
    }
    /* The union: sort the spans by start (pairs stay together) and merge the ones that overlap or touch. */
    if (count > 1) qsort(spans.v, (size_t)spans.n / 2, 2 * sizeof(int64_t), compare_int64);
    Runs runs = {0};
    int64_t position = 0;
    for (Py_ssize_t j = 0; j < spans.n; j += 2) {
        int64_t start = spans.v[j], end = spans.v[j + 1];
        if (runs.n > 0 && start <= position) {
            if (end > position) runs.v[runs.n - 1] += end - position, position = end;
            continue;
        }
        if (runs_push(&runs, start - position) < 0 || runs_push(&runs, end - start) < 0) {
            free(runs.v);
            goto nomemory;
        }
        position = end;
    }
    if (runs_push(&runs, (int64_t)h * w - position) < 0) {
        free(runs.v);
        goto nomemory;
    }
    result = runs_window(&runs, h, w, margin);
    free(runs.v);
    goto done;
nomemory:
    PyErr_NoMemory();
done:
    Py_DECREF(outer);
    free(xy), free(cols.v), free(rows.v), free(spans.v);
    return result;
}

/* The top bit of each byte of x set where that byte is nonzero, every other bit clear. */
static inline uint64_t nonzero_bytes(uint64_t x) {
    const uint64_t low7 = 0x7F7F7F7F7F7F7F7FULL;
    return (((x & low7) + low7) | x) & ~low7;
}

/* polygon_bounds(coordinates: list) -> (x_min, y_min, x_max, y_max) of a flat [x0, y0, x1, y1, ...] list, or
 * None unless it holds at least one point and only finite plain floats and ints (validation's fast path; it
 * looks closer at anything else). */
static PyObject *polygon_bounds(PyObject *self, PyObject *arg) {
    if (!PyList_CheckExact(arg) || PyList_GET_SIZE(arg) < 2) Py_RETURN_NONE;
    double low[2] = {INFINITY, INFINITY}, high[2] = {-INFINITY, -INFINITY};
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(arg); i++) {
        PyObject *item = PyList_GET_ITEM(arg, i);
        double v;
        if (PyFloat_CheckExact(item)) {
            v = PyFloat_AS_DOUBLE(item);
        } else if (PyLong_CheckExact(item)) {
            v = PyLong_AsDouble(item);
            if (v == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                Py_RETURN_NONE;
            }
        } else {
            Py_RETURN_NONE;
        }
        if (!isfinite(v)) Py_RETURN_NONE;
        if (v < low[i & 1]) low[i & 1] = v;
        if (v > high[i & 1]) high[i & 1] = v;
    }
    return Py_BuildValue("(dddd)", low[0], low[1], high[0], high[1]);
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

/* compress_counts(counts: sequence of ints) -> str
 * COCO's compressed string of uncompressed RLE runs, as pycocotools' rleToString writes it: from the fourth run
 * on, each run minus the run two before it, in write_run's 5-bit groups. Runs beyond +-2**62 raise
 * OverflowError (no image has them), non-ints TypeError.
 */
static PyObject *compress_counts(PyObject *self, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "RLE counts must be a list of ints");
    if (!seq) return NULL;
    Py_ssize_t k = PySequence_Fast_GET_SIZE(seq), n = 0, cap = 64;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    char *buf = malloc((size_t)cap);
    int64_t before = 0, last = 0; /* counts[i - 2], counts[i - 1] */
    const int64_t limit = (int64_t)1 << 62;
    if (!buf) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < k; i++) {
        long long v = PyLong_AsLongLong(items[i]);
        if (v == -1 && PyErr_Occurred()) goto fail;
        if (v > limit || v < -limit) {
            PyErr_SetString(PyExc_OverflowError, "RLE run out of range");
            goto fail;
        }
        if (write_run(&buf, &n, &cap, i > 2 ? (int64_t)v - before : (int64_t)v) < 0) {
            PyErr_NoMemory();
            goto fail;
        }
        before = last;
        last = (int64_t)v;
    }
    PyObject *out = PyUnicode_DecodeASCII(buf, n, NULL);
    free(buf);
    Py_DECREF(seq);
    return out;
fail:
    free(buf);
    Py_DECREF(seq);
    return NULL;
}

/* encode_window(window: uint8 buffer, row-major (wh rows of ww), wh, ww, x0, y0, height, width)
 *   -> (counts: str, area: int, bbox: (x, y, w, h) floats, (0, 0, 0, 0) when empty)
 * The full-image compressed RLE of a mask that is zero outside the window (nonzero = foreground), with the
 * foreground's pixel count and tight box.
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
        while (c + 32 <= ww && memcmp(cur + c, prev + c, 32) == 0) c += 32; /* long unchanged stretches */
        for (; c + 8 <= ww; c += 8) {
            uint64_t a, b;
            memcpy(&a, cur + c, 8);
            memcpy(&b, prev + c, 8);
            if (a == b) {
                if (c + 40 <= ww && memcmp(cur + c + 8, prev + c + 8, 32) == 0) c += 32;
                continue;
            }
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            for (uint64_t diff = nonzero_bytes(a) ^ nonzero_bytes(b); diff; diff &= diff - 1)
                failed |= runs_push(&cols, c + (__builtin_ctzll(diff) >> 3)) | runs_push(&rows, r);
#else
            for (int j = 0; j < 8; j++)
                if ((cur[c + j] != 0) != (prev[c + j] != 0)) failed |= runs_push(&cols, c + j) | runs_push(&rows, r);
#endif
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
    /* Area and tight box of the foreground [pos[0], pos[1]), [pos[2], pos[3]), ... (pycocotools' toBbox rule:
       a run that spans columns spans all rows). */
    int64_t area = 0, bx0 = INT64_MAX, bx1 = -1, by0 = INT64_MAX, by1 = -1;
    for (int64_t i = 0; i < k; i += 2) {
        int64_t start = pos[i], end = (i + 1 < k ? pos[i + 1] : total) - 1, c0 = start / h, c1 = end / h;
        area += end - start + 1;
        if (c0 < bx0) bx0 = c0;
        if (c1 > bx1) bx1 = c1;
        if (c0 != c1) by0 = 0, by1 = h - 1;
        if (start % h < by0) by0 = start % h;
        if (end % h > by1) by1 = end % h;
    }
    double box[4] = {0, 0, 0, 0};
    if (k > 0) box[0] = (double)bx0, box[1] = (double)by0, box[2] = (double)(bx1 - bx0 + 1), box[3] = (double)(by1 - by0 + 1);
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
    PyObject *result = failed ? PyErr_NoMemory()
                              : Py_BuildValue("(s#L(dddd))", text, length, (long long)area, box[0], box[1], box[2], box[3]);
    free(text);
    return result;
}

/* match_detections(ious, gt_ids, gt_crowd, gt_area, dt_area, dt_mark, area_ranges, thresholds)
 *   -> bytes of D * A * T codes (detection, area range, threshold): 1 = true positive, 2 = false positive,
 *      0 = neither (ignored).
 * One image and category, under COCO's greedy matching exactly as faster-coco-eval's C++ (and pycocotools):
 * detections in score order (ious rows, float64 D x G), ground truths in file order (columns); for each area
 * range the ground truths are stably reordered non-ignored first (ignored: crowd or area outside the range),
 * and for each threshold every detection takes the best still-free ground truth (a crowd stays free) with
 * IoU >= min(threshold, 1 - 1e-10), preferring a non-ignored one; a detection matched to an ignored ground
 * truth is ignored, and so is an unmatched one whose area is outside the range or whose category the image
 * does not list exhaustively (LVIS, dt_mark). A match counts as true positive when the ground truth's id is
 * > 0 and as neither when it is < 0, as in faster-coco-eval (its match slot stores the id). */
static PyObject *match_detections(PyObject *self, PyObject *args) {
    Py_buffer b[8];
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &b[6], &b[7])) return NULL;
    Py_ssize_t G = b[1].len / 8, D = b[4].len / 8, A = b[6].len / 16, T = b[7].len / 8;
    PyObject *result = NULL;
    if (b[0].len != D * G * 8 || b[2].len != G || b[3].len != G * 8 || b[5].len != D || b[1].len % 8 || b[4].len % 8) {
        PyErr_SetString(PyExc_ValueError, "match_detections: inconsistent buffer sizes");
        goto done;
    }
    const double *ious = b[0].buf, *gt_area = b[3].buf, *dt_area = b[4].buf, *ranges = b[6].buf, *thr = b[7].buf;
    const int64_t *gt_ids = b[1].buf;
    const unsigned char *crowd = b[2].buf, *mark = b[5].buf;
    result = PyBytes_FromStringAndSize(NULL, A * T * D);
    int64_t *order = malloc((size_t)(G + 1) * sizeof(int64_t));
    unsigned char *ignore = malloc((size_t)G + 1), *taken = malloc((size_t)G + 1);
    if (!result || !order || !ignore || !taken) {
        Py_XDECREF(result);
        result = NULL;
        free(order), free(ignore), free(taken);
        PyErr_NoMemory();
        goto done;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    for (Py_ssize_t a = 0; a < A; a++) {
        double lo = ranges[2 * a], hi = ranges[2 * a + 1];
        Py_ssize_t n = 0;
        for (int pass = 0; pass < 2; pass++) /* stable partition: non-ignored first */
            for (Py_ssize_t g = 0; g < G; g++) {
                int ig = crowd[g] || gt_area[g] < lo || gt_area[g] > hi;
                if (ig == pass) order[n++] = g;
            }
        for (Py_ssize_t g = 0; g < G; g++) ignore[g] = crowd[order[g]] || gt_area[order[g]] < lo || gt_area[order[g]] > hi;
        for (Py_ssize_t t = 0; t < T; t++) {
            memset(taken, 0, (size_t)G);
            for (Py_ssize_t d = 0; d < D; d++) {
                double best = thr[t] < 1 - 1e-10 ? thr[t] : 1 - 1e-10;
                Py_ssize_t match = -1;
                for (Py_ssize_t g = 0; g < G; g++) {
                    if (taken[g] && !crowd[order[g]]) continue;
                    if (match >= 0 && !ignore[match] && ignore[g]) break;
                    double iou = ious[d * G + order[g]];
                    if (iou >= best) best = iou, match = g;
                }
                int64_t matched_id = 0;
                int ig = 0;
                if (match >= 0) {
                    ig = ignore[match];
                    matched_id = gt_ids[order[match]];
                    taken[match] = 1;
                }
                if (matched_id == 0 && (dt_area[d] < lo || dt_area[d] > hi || mark[d])) ig = 1;
                out[(d * A + a) * T + t] = ig ? 0 : matched_id > 0 ? 1 : matched_id == 0 ? 2 : 0;
            }
        }
    }
    free(order), free(ignore), free(taken);
done:
    for (int i = 0; i < 8; i++) PyBuffer_Release(&b[i]);
    return result;
}

/* scan_json_array(data, state) -> (ends: list of int, state)
 * Splits the top level of a JSON array read in pieces: `state` is (depth, in_string, escaped, started, ended)
 * carried from the previous piece ((0, 0, 0, 0, 0) at the start). Returns the offsets in `data` of every ','
 * or ']' that closes a top-level element (the closing ']' of the array is reported once, as -1 - offset).
 * Raises ValueError on a document that is not an array, on text after it, or on nesting deeper than 64. Only
 * the structure is checked; the elements are parsed (and validated) by the caller. */
static PyObject *scan_json_array(PyObject *self, PyObject *args) {
    Py_buffer view;
    int depth, in_string, escaped, started, ended;
    if (!PyArg_ParseTuple(args, "y*(iiiii)", &view, &depth, &in_string, &escaped, &started, &ended)) return NULL;
    const unsigned char *s = view.buf;
    PyObject *ends = PyList_New(0);
    const char *error = NULL;
    for (Py_ssize_t i = 0; ends && i < view.len && !error; i++) {
        unsigned char c = s[i];
        if (in_string) {
            if (escaped) escaped = 0;
            else if (c == '\\') escaped = 1;
            else if (c == '"') in_string = 0;
            continue;
        }
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (ended) error = "text after the end of the JSON list";
        else if (!started) {
            if (c != '[') error = "COCO results must be a JSON list of detections";
            started = 1, depth = 1;
        } else if (c == '"') in_string = 1;
        else if (c == '[' || c == '{') {
            if (++depth > 64) error = "JSON nested deeper than 64 levels";
        } else if (c == ']' || c == '}') {
            if (--depth == 0) {
                ended = 1;
                PyObject *v = PyLong_FromSsize_t(-1 - i);
                if (!v || PyList_Append(ends, v) < 0) Py_CLEAR(ends);
                Py_XDECREF(v);
            }
        } else if (c == ',' && depth == 1) {
            PyObject *v = PyLong_FromSsize_t(i);
            if (!v || PyList_Append(ends, v) < 0) Py_CLEAR(ends);
            Py_XDECREF(v);
        }
    }
    PyBuffer_Release(&view);
    if (!ends) return NULL;
    if (error) {
        Py_DECREF(ends);
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    return Py_BuildValue("(N(iiiii))", ends, depth, in_string, escaped, started, ended);
}

/* json_array_spans(data, from, base, state) -> (starts: bytes, ends: bytes, state, done)
 * The elements of a JSON array read in pieces: `data` holds the file's bytes from absolute offset `base`, and the
 * scan starts at data[from] (the array's '[' on the first call). `state` is (depth, in_string, escaped, started,
 * need_value, gap, element_start, element_end) carried from the previous piece ((0, 0, 0, 0, 0, 0, -1, -1) at the
 * start; gap: white space seen after an element's top level).
 * Returns the absolute offsets of each element completed in this piece, its first byte and one past its last
 * (int64, native order), and `done`: one past the array's closing ']', or -1 when the piece ended first. Only the
 * structure is followed (strings, nesting); the elements are parsed (and validated) by the caller. Raises
 * ValueError on a missing value (",," "[," ",]"), two values without a comma between them or an
 * unbalanced closing bracket. */
static PyObject *json_array_spans(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t from;
    long long base, element_start, element_end;
    int depth, in_string, escaped, started, need_value, gap;
    if (!PyArg_ParseTuple(args, "y*nL(iiiiiiLL)", &view, &from, &base, &depth, &in_string, &escaped, &started,
                          &need_value, &gap, &element_start, &element_end))
        return NULL;
    const unsigned char *s = view.buf;
    Py_ssize_t n = view.len, count = 0, capacity = 0;
    int64_t *spans = NULL; /* start, end pairs */
    long long done = -1;
    const char *error = NULL;
    for (Py_ssize_t i = from < 0 ? 0 : from; i < n && !error; i++) {
        unsigned char c = s[i];
        long long at = base + i;
        if (in_string) {
            if (escaped) escaped = 0;
            else if (c == '\\') escaped = 1;
            else if (c == '"') in_string = 0, element_end = at + 1;
            continue;
        }
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            if (depth == 1 && element_start >= 0) gap = 1;
            continue;
        }
        if (!started) {
            if (c != '[') error = "expected an array";
            started = 1, depth = 1;
            continue;
        }
        if (depth == 1 && (c == ',' || c == ']')) {
            if (element_start < 0) {
                if (c == ',' || need_value) { error = "expected a value"; continue; }
                done = at + 1; /* an empty array */
                break;
            }
            if (count == capacity) {
                capacity = capacity ? 2 * capacity : 256;
                int64_t *grown = realloc(spans, (size_t)capacity * 2 * sizeof(int64_t));
                if (!grown) { error = "out of memory"; continue; }
                spans = grown;
            }
            spans[2 * count] = element_start, spans[2 * count + 1] = element_end, count++;
            element_start = element_end = -1;
            need_value = c == ',', gap = 0;
            if (c == ']') { done = at + 1; break; }
            continue;
        }
        if (depth == 1 && gap) { error = "expected ',' or ']'"; continue; }
        if (element_start < 0) element_start = at;
        element_end = at + 1;
        if (c == '"') in_string = 1;
        else if (c == '[' || c == '{') depth++;
        else if (c == ']' || c == '}') {
            if (depth <= 1) error = "unbalanced closing bracket";
            depth--;
        }
    }
    PyBuffer_Release(&view);
    if (error) {
        free(spans);
        PyErr_SetString(error[0] == 'o' ? PyExc_MemoryError : PyExc_ValueError, error);
        return NULL;
    }
    PyObject *starts = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int64_t));
    PyObject *ends = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int64_t));
    if (starts && ends) {
        int64_t *a = (int64_t *)PyBytes_AS_STRING(starts), *b = (int64_t *)PyBytes_AS_STRING(ends);
        for (Py_ssize_t k = 0; k < count; k++) a[k] = spans[2 * k], b[k] = spans[2 * k + 1];
    }
    free(spans);
    if (!starts || !ends) {
        Py_XDECREF(starts), Py_XDECREF(ends);
        return NULL;
    }
    return Py_BuildValue("(NN(iiiiiiLL)L)", starts, ends, depth, in_string, escaped, started, need_value, gap,
                         element_start, element_end, done);
}

/* accumulate_category(codes, rank, n_gt, max_dets, recall_thresholds, T)
 *   -> (precision: bytes of T x R x A x M doubles, recall: bytes of T x A x M doubles)
 * faster-coco-eval's Accumulate (ComputePrecisionRecallCurve) for one category. `codes` are uint8 [n, A, T]
 * (1 true positive, 2 false positive, 0 ignored) of the category's detections already in accumulation order
 * (decreasing score, ties by image then rank); `rank` (int32 [n]) is each one's rank in its image; `n_gt`
 * (int64 [A]) the non-ignored ground truths per area range (0: the entries stay -1); `max_dets` (int64 [M]).
 * For each (area, limit, threshold): the detections of rank < limit, cumulative tp and fp, recall tp / n_gt,
 * precision tp / (tp + fp) (0 before any), precision made non-increasing from the right, then read at the first
 * recall >= each threshold (0 past the end); recall is the last one (0 without detections). */
static PyObject *accumulate_category(PyObject *self, PyObject *args) {
    Py_buffer b[5];
    Py_ssize_t T;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*n", &b[0], &b[1], &b[2], &b[3], &b[4], &T)) return NULL;
    Py_ssize_t n = b[1].len / 4, A = b[2].len / 8, M = b[3].len / 8, R = b[4].len / 8;
    PyObject *precision = NULL, *recall = NULL, *result = NULL;
    double *rc = NULL, *pr = NULL;
    if (T <= 0 || b[0].len != n * A * T) {
        PyErr_SetString(PyExc_ValueError, "accumulate_category: inconsistent buffer sizes");
        goto done;
    }
    const unsigned char *codes = b[0].buf;
    const int32_t *rank = b[1].buf;
    const int64_t *n_gt = b[2].buf, *max_dets = b[3].buf;
    const double *thr = b[4].buf;
    precision = PyBytes_FromStringAndSize(NULL, T * R * A * M * (Py_ssize_t)sizeof(double));
    recall = PyBytes_FromStringAndSize(NULL, T * A * M * (Py_ssize_t)sizeof(double));
    rc = malloc((size_t)(n + 1) * sizeof(double));
    pr = malloc((size_t)(n + 1) * sizeof(double));
    if (!precision || !recall || !rc || !pr) {
        PyErr_NoMemory();
        goto done;
    }
    double *P = (double *)PyBytes_AS_STRING(precision), *Q = (double *)PyBytes_AS_STRING(recall);
    for (Py_ssize_t i = 0; i < T * R * A * M; i++) P[i] = -1;
    for (Py_ssize_t i = 0; i < T * A * M; i++) Q[i] = -1;
    for (Py_ssize_t a = 0; a < A; a++) {
        if (n_gt[a] == 0) continue;
        for (Py_ssize_t m = 0; m < M; m++) {
            for (Py_ssize_t t = 0; t < T; t++) {
                int64_t tp = 0, fp = 0;
                Py_ssize_t count = 0;
                for (Py_ssize_t i = 0; i < n; i++) {
                    if (rank[i] >= max_dets[m]) continue;
                    unsigned char code = codes[(i * A + a) * T + t];
                    if (code == 1) tp++;
                    else if (code == 2) fp++;
                    rc[count] = (double)tp / (double)n_gt[a];
                    pr[count] = tp + fp > 0 ? (double)tp / (double)(tp + fp) : 0.0;
                    count++;
                }
                Q[(t * A + a) * M + m] = count ? rc[count - 1] : 0;
                for (Py_ssize_t i = count - 1; i > 0; i--)
                    if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
                for (Py_ssize_t r = 0, at = 0; r < R; r++) {
                    while (at < count && rc[at] < thr[r]) at++; /* thresholds increase: lower_bound moves on */
                    P[((t * R + r) * A + a) * M + m] = at < count ? pr[at] : 0;
                }
            }
        }
    }
    result = PyTuple_Pack(2, precision, recall);
done:
    Py_XDECREF(precision);
    Py_XDECREF(recall);
    free(rc), free(pr);
    for (int i = 0; i < 5; i++) PyBuffer_Release(&b[i]);
    return result;
}

/* AND of `length` consecutive lines starting at each line, over `count` lines of `width` bytes (0 where the run
 * of lines leaves the window), by doubling: the AND of 2p lines is the AND of two overlapping runs of p. `a`
 * holds the lines and receives the result; `tmp` is scratch of the same size. Lines may be single bytes
 * (width 1, one row's pixels) or whole rows. Every step is a plain AND of two arrays, which compilers vectorise. */
static void and_runs(unsigned char *a, unsigned char *tmp, Py_ssize_t count, Py_ssize_t width, int64_t length) {
    unsigned char *src = a, *dst = tmp;
    int64_t p = 1;
    while (p < length) {
        int64_t step = 2 * p <= length ? p : length - p; /* the last step closes the run to `length` exactly */
        Py_ssize_t keep = count - step > 0 ? (Py_ssize_t)(count - step) : 0;
        unsigned char *restrict d = dst;
        const unsigned char *restrict x = src, *restrict y = src + step * width;
        for (Py_ssize_t i = 0; i < keep * width; i++) d[i] = x[i] & y[i];
        memset(dst + keep * width, 0, (size_t)((count - keep) * width));
        p += step;
        unsigned char *t = src;
        src = dst, dst = t;
    }
    if (src != a) memcpy(a, src, (size_t)(count * width));
}

/* boundary_counts(counts: bytes|str, height, width, dilation) -> compressed counts (str) of the mask's boundary
 * as Boundary IoU defines it (boundary-iou-api: mask - erode(pad(mask, 1, 0), 3x3, iterations=dilation), cropped
 * back): a foreground pixel is on the boundary when a background pixel or a place outside the image lies within
 * chessboard distance `dilation` of it. Only the window around the foreground (grown by one pixel) is decoded:
 * everything outside it is background or outside the image, so counts as background. Eroding by the
 * (2d+1)-square is eroding rows by 2d+1 pixels, then columns by 2d+1 rows (and_runs), shifted back by d. */
static PyObject *boundary_counts(PyObject *self, PyObject *args) {
    const char *s;
    Py_ssize_t len, h, w, d;
    if (!PyArg_ParseTuple(args, "s#nnn", &s, &len, &h, &w, &d) || check_size(h, w, 1) < 0) return NULL;
    if (d < 1) {
        PyErr_SetString(PyExc_ValueError, "dilation must be >= 1");
        return NULL;
    }
    Runs runs = {0};
    PyObject *window = parse_counts(s, len, &runs) < 0 ? NULL : runs_window(&runs, h, w, 1);
    free(runs.v);
    if (!window) return NULL;
    Py_ssize_t x0 = 0, y0 = 0, wh = 0, ww = 0;
    PyObject *band = NULL;
    if (window == Py_None) {
        band = PyBytes_FromStringAndSize(NULL, 0);
    } else {
        long long X0, Y0, X1, Y1;
        PyObject *buffer;
        if (!PyArg_ParseTuple(window, "LLLLO", &X0, &Y0, &X1, &Y1, &buffer)) {
            Py_DECREF(window);
            return NULL;
        }
        x0 = (Py_ssize_t)X0, y0 = (Py_ssize_t)Y0, wh = (Py_ssize_t)(Y1 - Y0), ww = (Py_ssize_t)(X1 - X0);
        const unsigned char *m = (const unsigned char *)PyByteArray_AS_STRING(buffer);
        Py_ssize_t n = wh * ww;
        band = PyBytes_FromStringAndSize(NULL, n);
        unsigned char *eroded = malloc((size_t)n + 1), *tmp = malloc((size_t)n + (size_t)ww + 1);
        if (!band || !eroded || !tmp) {
            Py_XDECREF(band);
            free(eroded), free(tmp);
            Py_DECREF(window);
            return PyErr_NoMemory();
        }
        const int64_t span = 2 * (int64_t)d + 1;
        unsigned char *line = tmp + n; /* one row's scratch */
        for (Py_ssize_t r = 0; r < wh; r++) { /* rows: eroded[r][c] = AND m[r][c - d .. c + d] */
            unsigned char *row = eroded + r * ww;
            memcpy(line, m + r * ww, (size_t)ww);
            and_runs(line, row, ww, 1, span); /* line[c] = AND m[r][c .. c + 2d] */
            for (Py_ssize_t c = 0; c < ww; c++) row[c] = c >= d ? line[c - d] : 0;
        }
        and_runs(eroded, tmp, wh, ww, span); /* columns: AND of rows r .. r + 2d */
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(band);
        for (Py_ssize_t r = 0; r < wh; r++) {
            const unsigned char *restrict mine = m + r * ww, *restrict inner = r >= d ? eroded + (r - d) * ww : NULL;
            unsigned char *restrict o = out + r * ww;
            if (inner)
                for (Py_ssize_t c = 0; c < ww; c++) o[c] = mine[c] & (unsigned char)~inner[c];
            else
                memcpy(o, mine, (size_t)ww);
        }
        free(eroded), free(tmp);
    }
    Py_DECREF(window);
    if (!band) return NULL;
    PyObject *encode_args = Py_BuildValue("(Onnnnnn)", band, wh, ww, x0, y0, h, w);
    Py_DECREF(band);
    if (!encode_args) return NULL;
    PyObject *encoded = encode_window(NULL, encode_args);
    Py_DECREF(encode_args);
    if (!encoded) return NULL;
    PyObject *counts = PyTuple_GET_ITEM(encoded, 0);
    Py_INCREF(counts);
    Py_DECREF(encoded);
    return counts;
}

static PyMethodDef methods[] = {
    {"decode_window", decode_window, METH_VARARGS, "Decode the window around an RLE's foreground."},
    {"encode_window", encode_window, METH_VARARGS, "Encode a window of a mask as full-image RLE counts."},
    {"polygons_window", polygons_window, METH_VARARGS, "Rasterise polygons (as pycocotools) into a window."},
    {"match_detections", match_detections, METH_VARARGS, "COCO greedy matching of one image and category."},
    {"boundary_counts", boundary_counts, METH_VARARGS, "Boundary IoU's band of an RLE mask, as RLE counts."},
    {"accumulate_category", accumulate_category, METH_VARARGS, "COCO accumulation of one category."},
    {"scan_json_array", scan_json_array, METH_VARARGS, "Split the top level of a JSON array read in pieces."},
    {"json_array_spans", json_array_spans, METH_VARARGS, "Spans of a JSON array's elements, read in pieces."},
    {"compress_counts", compress_counts, METH_O, "Uncompressed RLE runs as COCO's compressed string."},
    {"polygon_bounds", polygon_bounds, METH_O, "Bounds of a flat coordinate list of finite plain numbers."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rle", "COCO RLE window codec.", -1, methods};

PyMODINIT_FUNC PyInit__rle(void) { return PyModule_Create(&module); }
