/*
 * Exact fast path for shapely.simplify(Polygon(ring), tolerance, preserve_topology=True) on integer rings.
 *
 * Written from the published algorithm (Douglas & Peucker 1973; Saalfeld 1999 on topologically consistent
 * Douglas-Peucker) and from black-box experiments against shapely 2.2 / GEOS 3.14; no GEOS or shapely source was
 * read or translated. The experiments (and tests/test_simplify.py) fix the behaviour matched here:
 *
 * - the ring p[0..n-1] is simplified as the closed line p[0], ..., p[n-1], p[0] by recursive Douglas-Peucker:
 *   a section (i, j) is flattened when its furthest inner point is within the tolerance (distance <= tolerance),
 *   else it is split at the furthest point (the first one on ties), sections in ring order;
 * - to keep a ring from collapsing, a section is split even within the tolerance while fewer than 3 vertices
 *   are kept before it and it is the whole closed ring (depth 0) or a direct child of it (depth 1):
 *   the rule "the result so far, plus one, or the depth, plus two, reaches 4 points" that fits every experiment;
 * - then the ring's start vertex is dropped when it lies within the tolerance of the segment joining its kept
 *   neighbours, and the ring starts again at the last vertex kept before it (even when that leaves a triangle);
 * - point-to-segment distance is the classic projection formula: the distance to the nearer end when the
 *   projection parameter r falls outside (0, 1), else |cross| / length; a degenerate segment (the whole ring's
 *   first section) gives the distance to its point; evaluated in doubles in exactly the order written in
 *   segment_distance (compiled without FMA contraction), it matched GEOS bit for bit in every experiment,
 *   including tolerances set to a computed distance and to the double just below it, so ties need no margin.
 *
 * A topology-preserving simplifier departs from plain Douglas-Peucker in cases this code does not reproduce; it
 * only *detects* them and reports the ring as not proven (the caller then asks shapely), namely when:
 *   - a new segment (one that skips input vertices, including the one that replaces the start vertex) touches
 *     or crosses any input segment outside its own section, or any other new segment, anywhere but one shared
 *     end (checked on the Douglas-Peucker result and again after the start vertex goes);
 *   - Douglas-Peucker keeps fewer than 4 distinct vertices;
 *   - the start vertex goes from a result of 5 or more distinct vertices and the new start vertex lies within
 *     the tolerance of the segment joining its kept neighbours too;
 *   - the input is already closed (first point repeated last), has fewer than 4 points, or has a coordinate
 *     beyond +-2^28 (where the exact integer predicates used here could overflow).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define COORD_LIMIT (1 << 28)
#define MARGIN 1e-9 /* relative slack of a conservative "could be within the tolerance" */
#define MIN_RING 4 /* points of the smallest closed ring (a triangle) */

typedef struct {
    int64_t x, y;
} Point;

/* Distance from p to the segment a-b (projection formula; see the header). */
static double segment_distance(Point p, Point a, Point b) {
    if (a.x == b.x && a.y == b.y) return sqrt((double)((p.x - a.x) * (p.x - a.x) + (p.y - a.y) * (p.y - a.y)));
    double dx = (double)(b.x - a.x), dy = (double)(b.y - a.y);
    double len2 = dx * dx + dy * dy;
    double r = ((double)(p.x - a.x) * dx + (double)(p.y - a.y) * dy) / len2;
    if (r <= 0.0) return sqrt((double)((p.x - a.x) * (p.x - a.x) + (p.y - a.y) * (p.y - a.y)));
    if (r >= 1.0) return sqrt((double)((p.x - b.x) * (p.x - b.x) + (p.y - b.y) * (p.y - b.y)));
    double s = ((double)(a.y - p.y) * dx - (double)(a.x - p.x) * dy) / len2;
    return fabs(s) * sqrt(len2);
}

/* Sign of the cross product (b - a) x (c - a); exact for coordinates within COORD_LIMIT. */
static int orient(Point a, Point b, Point c) {
    int64_t v = (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x);
    return (v > 0) - (v < 0);
}

/* Whether c (known collinear with a-b) lies on the closed segment a-b. */
static int on_segment(Point a, Point b, Point c) {
    return (c.x >= (a.x < b.x ? a.x : b.x)) && (c.x <= (a.x > b.x ? a.x : b.x)) &&
           (c.y >= (a.y < b.y ? a.y : b.y)) && (c.y <= (a.y > b.y ? a.y : b.y));
}

/* Whether the closed segments a-b and c-d share at least one point. */
static int segments_meet(Point a, Point b, Point c, Point d) {
    if ((a.x < c.x && a.x < d.x && b.x < c.x && b.x < d.x) || (a.x > c.x && a.x > d.x && b.x > c.x && b.x > d.x) ||
        (a.y < c.y && a.y < d.y && b.y < c.y && b.y < d.y) || (a.y > c.y && a.y > d.y && b.y > c.y && b.y > d.y))
        return 0;
    int o1 = orient(a, b, c), o2 = orient(a, b, d), o3 = orient(c, d, a), o4 = orient(c, d, b);
    if (o1 * o2 < 0 && o3 * o4 < 0) return 1;
    if (o1 == 0 && on_segment(a, b, c)) return 1;
    if (o2 == 0 && on_segment(a, b, d)) return 1;
    if (o3 == 0 && on_segment(c, d, a)) return 1;
    if (o4 == 0 && on_segment(c, d, b)) return 1;
    return 0;
}

/* Segments x-y and x-z share the end x: whether they also meet elsewhere (collinear, same direction). */
static int overlap_beyond_shared_end(Point x, Point y, Point z) {
    if (orient(x, y, z) != 0) return 0;
    return (y.x - x.x) * (z.x - x.x) + (y.y - x.y) * (z.y - x.y) > 0;
}

/* Whether the flattening segment between ring indices s and e meets the segment between ring indices u and v
 * anywhere but one shared end (ends are shared by index, so a repeated coordinate elsewhere is a touch). */
static int bad_meeting(const Point *p, Py_ssize_t n, Py_ssize_t s, Py_ssize_t e, Py_ssize_t u, Py_ssize_t v) {
    s %= n, e %= n, u %= n, v %= n;
    Point a = p[s], b = p[e], c = p[u], d = p[v];
    if (!segments_meet(a, b, c, d)) return 0;
    int shares_s = (u == s || v == s), shares_e = (u == e || v == e);
    if (shares_s && shares_e) return 1;
    if (shares_s) return overlap_beyond_shared_end(a, b, u == s ? d : c);
    if (shares_e) return overlap_beyond_shared_end(b, a, u == e ? d : c);
    return 1;
}

typedef struct {
    Py_ssize_t i, j, depth;
} Section;

/* Bounding box of a run of BLOCK consecutive input segments, to skip runs far from a new segment. */
#define BLOCK 16
typedef struct {
    int64_t x0, y0, x1, y1;
} Box;

static Box segment_box(Point a, Point b) {
    return (Box){a.x < b.x ? a.x : b.x, a.y < b.y ? a.y : b.y, a.x > b.x ? a.x : b.x, a.y > b.y ? a.y : b.y};
}

static int boxes_meet(Box a, Box b) { return a.x0 <= b.x1 && b.x0 <= a.x1 && a.y0 <= b.y1 && b.y0 <= a.y1; }

/* Whether every new segment of the closed result kept[0..m-1] (ring indices, increasing, unwrapped; a new
 * segment skips input vertices) stays clear of the input segments outside its section and of the other new
 * segments, but for one shared end. blocks: the boxes of the input's runs of BLOCK segments. */
static int new_segments_clear(const Point *p, Py_ssize_t n, const Py_ssize_t *kept, Py_ssize_t m, const Box *blocks) {
    for (Py_ssize_t q = 0; q + 1 < m; q++) {
        Py_ssize_t s = kept[q], e = kept[q + 1];
        if (e - s < 2) continue;
        if (p[s % n].x == p[e % n].x && p[s % n].y == p[e % n].y) return 0;
        Box box = segment_box(p[s % n], p[e % n]);
        for (Py_ssize_t b = 0; b * BLOCK < n; b++) {
            if (!boxes_meet(box, blocks[b])) continue;
            for (Py_ssize_t k = b * BLOCK; k < n && k < (b + 1) * BLOCK; k++) {
                if (((k - s) % n + n) % n < e - s) continue; /* inside the section */
                if (bad_meeting(p, n, s, e, k, k + 1)) return 0;
            }
        }
        for (Py_ssize_t r = 0; r + 1 < m; r++) {
            if (r == q || kept[r + 1] - kept[r] < 2 || !boxes_meet(box, segment_box(p[kept[r] % n], p[kept[r + 1] % n])))
                continue;
            if (bad_meeting(p, n, s, e, kept[r], kept[r + 1])) return 0;
        }
    }
    return 1;
}

/*
 * Simplify one ring p[0..n-1]; on success write the kept ring indices (closed: 0 first, n last) to kept and
 * their count to *count and return 1; return 0 when the result is not proven equal to the topology-preserving
 * simplifier's. stack holds n + 1 sections, kept n + 1 indices and blocks n / BLOCK + 1 boxes.
 */
static int simplify_ring(const Point *p, Py_ssize_t n, double tolerance, Section *stack, Py_ssize_t *kept,
                         Box *blocks, Py_ssize_t *count) {
    if (n < 4 || (p[0].x == p[n - 1].x && p[0].y == p[n - 1].y)) return 0;
    for (Py_ssize_t k = 0; k < n; k++)
        if (p[k].x > COORD_LIMIT || p[k].x < -COORD_LIMIT || p[k].y > COORD_LIMIT || p[k].y < -COORD_LIMIT) return 0;
    /* Douglas-Peucker over the closed line 0..n, depth first, the earlier half first, so kept is in order. */
    Py_ssize_t top = 0, m = 0;
    stack[top++] = (Section){0, n, 0};
    while (top) {
        Section sec = stack[--top];
        if (sec.j - sec.i < 2) {
            kept[m++] = sec.i;
            continue;
        }
        Point a = p[sec.i], b = p[sec.j % n];
        double best = -1.0;
        Py_ssize_t at = -1;
        for (Py_ssize_t k = sec.i + 1; k < sec.j; k++) {
            double d = segment_distance(p[k], a, b);
            if (d > best) best = d, at = k;
        }
        /* a short result is not flattened near the root: the section is split at its furthest point instead */
        if (best <= tolerance && m + 1 < MIN_RING && sec.depth + 2 < MIN_RING) best = tolerance + 1.0;
        if (best <= tolerance) {
            kept[m++] = sec.i;
            continue;
        }
        stack[top++] = (Section){at, sec.j, sec.depth + 1};
        stack[top++] = (Section){sec.i, at, sec.depth + 1};
    }
    kept[m++] = n;
    if (m < 5) return 0; /* fewer than 4 distinct vertices */
    for (Py_ssize_t b = 0; b * BLOCK < n; b++) {
        Box box = segment_box(p[b * BLOCK], p[(b * BLOCK + 1) % n]);
        for (Py_ssize_t k = b * BLOCK + 1; k < n && k < (b + 1) * BLOCK; k++) {
            Box next = segment_box(p[k], p[(k + 1) % n]);
            box = (Box){box.x0 < next.x0 ? box.x0 : next.x0, box.y0 < next.y0 ? box.y0 : next.y0,
                        box.x1 > next.x1 ? box.x1 : next.x1, box.y1 > next.y1 ? box.y1 : next.y1};
        }
        blocks[b] = box;
    }
    if (!new_segments_clear(p, n, kept, m, blocks)) return 0;
    /* The start vertex goes when it is within the tolerance of the segment joining its kept neighbours; the ring
     * then starts at its last kept vertex. Indices become unwrapped: kept is increasing, ends n apart. */
    double start = segment_distance(p[0], p[kept[m - 2]], p[kept[1]]);
    if (start <= tolerance) {
        /* the new start could go too (unless the ring is down to a triangle) */
        if (m > 5 && segment_distance(p[kept[m - 2]], p[kept[m - 3]], p[kept[1]]) <= tolerance * (1.0 + MARGIN) + MARGIN)
            return 0;
        Py_ssize_t last = kept[m - 2];
        for (Py_ssize_t q = 1; q < m - 1; q++) kept[q] += n;
        kept[0] = last;
        kept[m - 2] = last + n;
        m -= 1;
        if (!new_segments_clear(p, n, kept, m, blocks)) return 0; /* the segment that replaces it, too */
    }
    *count = m;
    return 1;
}

static int check_buffer(Py_buffer *view, const char *name, int ndim, Py_ssize_t itemsize, const char *formats) {
    if (view->ndim != ndim || view->itemsize != itemsize || !PyBuffer_IsContiguous(view, 'C') ||
        (view->format && !strchr(formats, view->format[0] == '<' || view->format[0] == '=' || view->format[0] == '@'
                                               ? view->format[1] : view->format[0]))) {
        PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous %d-d array of %zd-byte integers", name, ndim,
                     itemsize);
        return -1;
    }
    if (ndim == 2 && view->shape[1] != 2) {
        PyErr_Format(PyExc_ValueError, "%s must have shape (n, 2), got (%zd, %zd)", name, view->shape[0],
                     view->shape[1]);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(simplify_rings_doc,
"simplify_rings(points, offsets, tolerance) -> (kept_points, kept_offsets, proven)\n\n"
"points: (N, 2) int32 C-contiguous (x, y) ring vertices, rings concatenated, each ring open (not repeating its\n"
"first point); offsets: (R + 1,) int64, ring r is points[offsets[r]:offsets[r + 1]], offsets[0] == 0,\n"
"non-decreasing, offsets[R] == N; tolerance: finite float >= 0, in the points' units.\n"
"Returns bytes: kept_points int32 (M, 2) closed rings, kept_offsets int64 (R + 1,), proven uint8 (R,).\n"
"A proven ring's kept points equal shapely.simplify(Polygon(ring), tolerance, preserve_topology=True)'s\n"
"exterior coordinates; a ring not proven keeps no points (ask shapely).");

static PyObject *simplify_rings(PyObject *self, PyObject *args) {
    Py_buffer pv, ov;
    PyObject *points_obj, *offsets_obj, *result = NULL;
    double tolerance;
    if (!PyArg_ParseTuple(args, "OOd", &points_obj, &offsets_obj, &tolerance)) return NULL;
    if (PyObject_GetBuffer(points_obj, &pv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    if (PyObject_GetBuffer(offsets_obj, &ov, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&pv);
        return NULL;
    }
    Section *stack = NULL;
    Py_ssize_t *kept = NULL;
    Box *blocks = NULL;
    int32_t *out = NULL;
    int64_t *out_offsets = NULL;
    unsigned char *proven = NULL;
    if (check_buffer(&pv, "points", 2, 4, "ilI") < 0 || check_buffer(&ov, "offsets", 1, 8, "qlQL") < 0) goto done;
    if (!isfinite(tolerance) || tolerance < 0.0) {
        PyErr_SetString(PyExc_ValueError, "tolerance must be a finite number >= 0");
        goto done;
    }
    Py_ssize_t total = pv.shape[0], rings = ov.shape[0] - 1;
    const int32_t *coords = pv.buf;
    const int64_t *offsets = ov.buf;
    if (rings < 0 || offsets[0] != 0 || offsets[rings] != total) {
        PyErr_SetString(PyExc_ValueError, "offsets must start at 0 and end at len(points)");
        goto done;
    }
    Py_ssize_t longest = 0;
    for (Py_ssize_t r = 0; r < rings; r++) {
        if (offsets[r + 1] < offsets[r]) {
            PyErr_SetString(PyExc_ValueError, "offsets must be non-decreasing");
            goto done;
        }
        if (offsets[r + 1] - offsets[r] > longest) longest = (Py_ssize_t)(offsets[r + 1] - offsets[r]);
    }
    Point *ring = malloc(sizeof(Point) * (size_t)(longest + 1));
    stack = malloc(sizeof(Section) * (size_t)(longest + 2));
    kept = malloc(sizeof(Py_ssize_t) * (size_t)(longest + 2));
    blocks = malloc(sizeof(Box) * (size_t)(longest / BLOCK + 2));
    out = malloc(sizeof(int32_t) * 2 * (size_t)(total + rings + 1));
    out_offsets = malloc(sizeof(int64_t) * (size_t)(rings + 1));
    proven = malloc((size_t)rings + 1);
    if (!ring || !stack || !kept || !blocks || !out || !out_offsets || !proven) {
        free(ring);
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t written = 0;
    out_offsets[0] = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rings; r++) {
        Py_ssize_t n = (Py_ssize_t)(offsets[r + 1] - offsets[r]), count = 0;
        const int32_t *c = coords + 2 * offsets[r];
        for (Py_ssize_t k = 0; k < n; k++) ring[k] = (Point){c[2 * k], c[2 * k + 1]};
        proven[r] = (unsigned char)simplify_ring(ring, n, tolerance, stack, kept, blocks, &count);
        if (proven[r])
            for (Py_ssize_t q = 0; q < count; q++, written++) {
                Point v = ring[kept[q] % n];
                out[2 * written] = (int32_t)v.x;
                out[2 * written + 1] = (int32_t)v.y;
            }
        out_offsets[r + 1] = written;
    }
    Py_END_ALLOW_THREADS
    free(ring);
    result = Py_BuildValue("(y#y#y#)", (const char *)out, (Py_ssize_t)(2 * sizeof(int32_t) * (size_t)written),
                           (const char *)out_offsets, (Py_ssize_t)(sizeof(int64_t) * (size_t)(rings + 1)),
                           (const char *)proven, rings);
done:
    free(stack);
    free(kept);
    free(blocks);
    free(out);
    free(out_offsets);
    free(proven);
    PyBuffer_Release(&pv);
    PyBuffer_Release(&ov);
    return result;
}

static PyMethodDef methods[] = {
    {"simplify_rings", simplify_rings, METH_VARARGS, simplify_rings_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_simplify",
                                    "Exact fast path for topology-preserving Douglas-Peucker on integer rings.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__simplify(void) { return PyModule_Create(&module); }
