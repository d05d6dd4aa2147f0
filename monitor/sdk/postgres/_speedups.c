/*
 * monitor.sdk.postgres._speedups: the C twin of the fast write path's encoder
 * (monitor/sdk/postgres/fast.py, encode_rows_py).
 *
 * Why C: the SDK's worker shares the GIL (and, on small machines, the cores) with the serving
 * code and with the Postgres backend. The Python reference encodes a plain record in several
 * microseconds; this twin does it in a fraction of that (benchmarks/worker_encoding.py).
 *
 * Contract: the same arguments as fast.encode_rows_py (the plan's pieces passed in), the same
 * bytes for each row, and None for exactly the rows the reference declines (a bool, a numpy
 * int, a naive datetime, a non-finite value, a missing or extra key, a non-dict row, an empty
 * id or one that is not valid UTF-8 or holds a NUL ...): the careful path cleans, counts or
 * refuses those. Tests compare both on random batches (tests/sdk/postgres/test_fast.py).
 *
 * Row layout (PostgreSQL binary COPY tuple, 12 fields, big-endian; see encode.py):
 *   [2 field count][model int4 field][8][event_ts int8][id len][id][version int4 field]
 *   num float8[]: [len][20-byte array header] then per value [8][float8]   (or NULL)
 *   cat text[]:   [len][20-byte array header] then the cached elements      (or NULL)
 *   extra NULL, prediction_num [8][float8], prediction_cat NULL, proba float8[] or NULL,
 *   latency [4][float4] or NULL, segment jsonb or NULL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define PG_EPOCH_US INT64_C(946684800000000)
#define FLOAT4_MAX 3.4028234663852886e38
#define FLOAT8_OID 701
#define MAX_CLASSES 64 /* a longer proba goes the Python way */

static inline char *put_i32(char *p, int32_t v)
{
    uint32_t u = (uint32_t)v;
    p[0] = (char)(u >> 24);
    p[1] = (char)(u >> 16);
    p[2] = (char)(u >> 8);
    p[3] = (char)u;
    return p + 4;
}

static inline char *put_u64(char *p, uint64_t u)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (char)(u & 0xff);
        u >>= 8;
    }
    return p + 8;
}

static inline char *put_f64(char *p, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return put_u64(p, u);
}

static inline char *put_f32(char *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return put_i32(p, (int32_t)u);
}

static inline char *put_bytes(char *p, const char *src, Py_ssize_t len)
{
    memcpy(p, src, (size_t)len);
    return p + len;
}

/* A finite double from a float (or float subclass) or an exact int; 0 when not plain. */
static int plain_number(PyObject *value, double *out)
{
    double v;
    if (PyFloat_Check(value)) {
        v = PyFloat_AS_DOUBLE(value);
    }
    else if (PyLong_CheckExact(value)) {
        v = PyLong_AsDouble(value);
        if (v == -1.0 && PyErr_Occurred())
            return 0;
    }
    else {
        return 0;
    }
    if (!isfinite(v))
        return 0;
    *out = v;
    return 1;
}

/* A proba as plain numbers: a dict keyed by exactly the version's classes (``order``), read in
 * that order, or a list or tuple of numbers. None is a null proba (*count = -1). 0 when not
 * plain (the Python path then cleans, counts and registers new classes). */
static int plain_proba(PyObject *value, PyObject *order, double *out, Py_ssize_t *count)
{
    Py_ssize_t k, size;
    if (value == Py_None) {
        *count = -1;
        return 1;
    }
    if (PyDict_CheckExact(value)) {
        if (order == NULL)
            return 0;
        size = PyTuple_GET_SIZE(order);
        if (size == 0 || size > MAX_CLASSES || PyDict_GET_SIZE(value) != size)
            return 0;
        for (k = 0; k < size; k++) {
            PyObject *v = PyDict_GetItemWithError(value, PyTuple_GET_ITEM(order, k));
            if (v == NULL || !plain_number(v, &out[k]))
                return 0;
        }
    }
    else if (PyList_CheckExact(value) || PyTuple_CheckExact(value)) {
        size = PySequence_Fast_GET_SIZE(value);
        if (size == 0 || size > MAX_CLASSES)
            return 0;
        for (k = 0; k < size; k++) {
            if (!plain_number(PySequence_Fast_GET_ITEM(value, k), &out[k]))
                return 0;
        }
    }
    else {
        return 0;
    }
    *count = size;
    return 1;
}

/* floor(ns / 1000) - PG_EPOCH_US from an exact int of nanoseconds; 0 when not plain. */
static int plain_micros(PyObject *value, int64_t *out)
{
    long long ns;
    int64_t q;
    if (!PyLong_CheckExact(value))
        return 0;
    ns = PyLong_AsLongLong(value);
    if (ns == -1 && PyErr_Occurred())
        return 0;
    q = ns / 1000;
    if (ns % 1000 < 0)
        q -= 1; /* floor division, as Python's // */
    *out = q - PG_EPOCH_US;
    return 1;
}

/* A row's event time: an exact int of nanoseconds, or whatever ``micros_of`` (Python:
 * pgbinary.datetime_micros, aware datetimes) turns into an exact int of microseconds since
 * 2000-01-01. 0 (no error set) when not plain. */
static int row_micros(PyObject *value, PyObject *micros_of, int64_t *out)
{
    PyObject *micros;
    long long v;
    if (PyLong_CheckExact(value))
        return plain_micros(value, out);
    if (micros_of == Py_None)
        return 0;
    micros = PyObject_CallOneArg(micros_of, value);
    if (micros == NULL || !PyLong_CheckExact(micros)) {
        Py_XDECREF(micros);
        PyErr_Clear();
        return 0;
    }
    v = PyLong_AsLongLong(micros);
    Py_DECREF(micros);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    *out = v;
    return 1;
}

/* The cached text[] element (length-prefixed UTF-8, or a null) of a category value, a new
 * reference; NULL (with no error set) when the value is not plain. A miss goes through
 * texts[value], i.e. TextCache.__missing__, which encodes, caches and refuses non-strings. */
static PyObject *category_element(PyObject *texts, PyObject *value)
{
    PyObject *element = PyDict_GetItemWithError(texts, value);
    if (element != NULL) {
        Py_INCREF(element);
    }
    else {
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return NULL;
        }
        element = PyObject_GetItem(texts, value);
        if (element == NULL) {
            PyErr_Clear();
            return NULL;
        }
    }
    if (!PyBytes_CheckExact(element)) {
        Py_DECREF(element);
        return NULL;
    }
    return element;
}

/* The UTF-8 form of a record id: exact strings as they are (their cached UTF-8, no copy),
 * anything else through format_id (pgbinary's rule); *keep holds the reference that owns the
 * data. 0 (no error set) when not plain: not valid UTF-8, or a NUL byte inside. */
static int id_utf8(PyObject *record_id, PyObject *format_id, PyObject **keep, const char **data,
                   Py_ssize_t *size)
{
    PyObject *text;
    if (PyUnicode_CheckExact(record_id)) {
        text = record_id;
        Py_INCREF(text);
    }
    else {
        text = PyObject_CallOneArg(format_id, record_id);
        if (text == NULL || !PyUnicode_CheckExact(text)) {
            Py_XDECREF(text);
            PyErr_Clear();
            return 0;
        }
    }
    *data = PyUnicode_AsUTF8AndSize(text, size);
    if (*data == NULL || *size == 0 || memchr(*data, 0, (size_t)*size) != NULL) {
        Py_DECREF(text);
        PyErr_Clear();
        return 0;
    }
    *keep = text;
    return 1;
}

/* Drop a row's category elements (the slots not filled yet are NULL). */
static void release(PyObject **elements, Py_ssize_t count)
{
    if (elements == NULL)
        return;
    for (Py_ssize_t j = 0; j < count; j++)
        Py_CLEAR(elements[j]);
}

static PyObject *encode_rows(PyObject *self, PyObject *args)
{
    PyObject *feats, *ids, *times, *preds, *lats, *probas, *segments, *numeric, *categorical;
    PyObject *head, *version_num_head, *cat_head, *texts, *format_id, *order, *segment_field;
    PyObject *micros_of;
    Py_ssize_t n_keys;
    PyObject *out = NULL, **elements = NULL;
    double *nums = NULL;
    Py_ssize_t n, n_num, n_cat, i, j;
    int constant_time = 0;
    int64_t micros0 = 0;
    (void)self;

    if (!PyArg_ParseTuple(args, "O!O!O!O!O!OOO!O!SSSO!OOOOn:encode_rows", &PyList_Type, &feats,
                          &PyList_Type, &ids, &PyList_Type, &times, &PyList_Type, &preds,
                          &PyList_Type, &lats, &probas, &segments, &PyTuple_Type, &numeric,
                          &PyTuple_Type, &categorical, &head, &version_num_head, &cat_head,
                          &PyDict_Type, &texts, &format_id, &order, &segment_field, &micros_of,
                          &n_keys))
        return NULL;
    n = PyList_GET_SIZE(feats);
    if (probas == Py_None)
        probas = NULL;
    if (segments == Py_None)
        segments = NULL;
    if (order == Py_None)
        order = NULL;
    if (PyList_GET_SIZE(ids) != n || PyList_GET_SIZE(times) != n ||
        PyList_GET_SIZE(preds) != n || PyList_GET_SIZE(lats) != n ||
        (probas != NULL && (!PyList_CheckExact(probas) || PyList_GET_SIZE(probas) != n)) ||
        (segments != NULL && (!PyList_CheckExact(segments) || PyList_GET_SIZE(segments) != n)) ||
        (order != NULL && !PyTuple_CheckExact(order))) {
        PyErr_SetString(PyExc_ValueError, "encode_rows: columns of different lengths or types");
        return NULL;
    }
    n_num = PyTuple_GET_SIZE(numeric);
    n_cat = PyTuple_GET_SIZE(categorical);
    if (n_cat > 0 && PyBytes_GET_SIZE(cat_head) != 20) {
        PyErr_SetString(PyExc_ValueError, "encode_rows: cat_head must be 20 bytes");
        return NULL;
    }

    /* One event time for the whole block (log_batch): read once. Only an optimisation: a
     * first time that is not plain leaves each row to read (and decline) its own. */
    if (n > 0 && PyLong_CheckExact(PyList_GET_ITEM(times, 0))) {
        PyObject *first = PyList_GET_ITEM(times, 0);
        constant_time = 1;
        for (i = 1; i < n && constant_time; i++) {
            PyObject *t = PyList_GET_ITEM(times, i);
            if (t != first) {
                int eq = PyLong_CheckExact(t) ? PyObject_RichCompareBool(t, first, Py_EQ) : 0;
                if (eq < 0) {
                    PyErr_Clear();
                    eq = 0;
                }
                constant_time = eq;
            }
        }
        if (constant_time && !plain_micros(first, &micros0)) {
            PyErr_Clear();
            constant_time = 0;
        }
    }

    out = PyList_New(n);
    elements = PyMem_Calloc((size_t)(n_cat > 0 ? n_cat : 1), sizeof(PyObject *));
    nums = PyMem_Malloc(sizeof(double) * (size_t)(n_num > 0 ? n_num : 1));
    if (out == NULL || elements == NULL || nums == NULL)
        goto error;

    for (i = 0; i < n; i++) {
        PyObject *feat = PyList_GET_ITEM(feats, i);
        PyObject *row, *rid;
        const char *rid_data;
        Py_ssize_t rid_size;
        double prediction, latency = 0.0, total, proba[MAX_CLASSES];
        Py_ssize_t n_proba = -1; /* -1: a null proba */
        PyObject *lat = PyList_GET_ITEM(lats, i), *segment = NULL;
        int64_t micros = micros0;
        Py_ssize_t size, cat_len = 0;
        char *p;

        if (!PyDict_CheckExact(feat) || (n_keys >= 0 && PyDict_GET_SIZE(feat) != n_keys))
            goto row_unusual; /* n_keys: other keys than the plan's are the general path's */
        total = 0.0;
        for (j = 0; j < n_num; j++) {
            PyObject *value = PyDict_GetItemWithError(feat, PyTuple_GET_ITEM(numeric, j));
            if (value == NULL || !plain_number(value, &nums[j]))
                goto row_unusual;
            total += nums[j];
        }
        if (!isfinite(total)) /* the Python reference's rule: a row whose sum overflows */
            goto row_unusual;
        for (j = 0; j < n_cat; j++) {
            PyObject *value = PyDict_GetItemWithError(feat, PyTuple_GET_ITEM(categorical, j));
            PyObject *element;
            if (value == NULL)
                goto row_unusual;
            /* Held: the lookup below may run Python code (a key's __hash__ or __eq__,
             * TextCache.__missing__), during which another thread may change the row. */
            Py_INCREF(value);
            element = category_element(texts, value);
            Py_DECREF(value);
            if (element == NULL)
                goto row_unusual;
            cat_len += PyBytes_GET_SIZE(element);
            elements[j] = element; /* owned until the row is written (below) */
        }
        if (!plain_number(PyList_GET_ITEM(preds, i), &prediction))
            goto row_unusual;
        if (lat != Py_None && (!plain_number(lat, &latency) || fabs(latency) > FLOAT4_MAX))
            goto row_unusual;
        if (probas != NULL && !plain_proba(PyList_GET_ITEM(probas, i), order, proba, &n_proba))
            goto row_unusual;
        if (!constant_time && !row_micros(PyList_GET_ITEM(times, i), micros_of, &micros))
            goto row_unusual;
        if (segments != NULL && PyList_GET_ITEM(segments, i) != Py_None) {
            /* Its JSONB field (length included), from encode.SegmentCache. */
            segment = PyObject_CallOneArg(segment_field, PyList_GET_ITEM(segments, i));
            if (segment == NULL || !PyBytes_CheckExact(segment)) {
                Py_XDECREF(segment);
                goto row_unusual;
            }
        }
        if (!id_utf8(PyList_GET_ITEM(ids, i), format_id, &rid, &rid_data, &rid_size)) {
            Py_XDECREF(segment);
            goto row_unusual;
        }
        if (rid_size > INT32_MAX / 2 || cat_len > INT32_MAX / 2) { /* no int4 length for it */
            Py_DECREF(rid);
            Py_XDECREF(segment);
            goto row_unusual;
        }

        size = PyBytes_GET_SIZE(head) + 8 + 4 + rid_size +
               PyBytes_GET_SIZE(version_num_head) + 12 * n_num +
               (n_cat ? 4 + 20 + cat_len : 4) + 4 + 4 + 8 + 4 +
               (n_proba < 0 ? 4 : 4 + 20 + 12 * n_proba) + (lat == Py_None ? 4 : 8) +
               (segment == NULL ? 4 : PyBytes_GET_SIZE(segment));
        row = PyBytes_FromStringAndSize(NULL, size);
        if (row == NULL) {
            Py_DECREF(rid);
            Py_XDECREF(segment);
            goto error;
        }
        p = PyBytes_AS_STRING(row);
        p = put_bytes(p, PyBytes_AS_STRING(head), PyBytes_GET_SIZE(head));
        p = put_u64(p, (uint64_t)micros);
        p = put_i32(p, (int32_t)rid_size);
        p = put_bytes(p, rid_data, rid_size);
        Py_DECREF(rid);
        p = put_bytes(p, PyBytes_AS_STRING(version_num_head), PyBytes_GET_SIZE(version_num_head));
        for (j = 0; j < n_num; j++) {
            p = put_i32(p, 8);
            p = put_f64(p, nums[j]);
        }
        if (n_cat) {
            p = put_i32(p, (int32_t)(20 + cat_len));
            p = put_bytes(p, PyBytes_AS_STRING(cat_head), 20);
            for (j = 0; j < n_cat; j++) {
                PyObject *element = elements[j];
                p = put_bytes(p, PyBytes_AS_STRING(element), PyBytes_GET_SIZE(element));
            }
        }
        else {
            p = put_i32(p, -1);
        }
        p = put_i32(p, -1); /* extra */
        p = put_i32(p, 8);  /* prediction_num */
        p = put_f64(p, prediction);
        p = put_i32(p, -1); /* prediction_cat */
        if (n_proba < 0) {
            p = put_i32(p, -1);
        }
        else { /* float8[]: length, header (ndim 1, no nulls, float8, n, lower bound 1) */
            p = put_i32(p, (int32_t)(20 + 12 * n_proba));
            p = put_i32(p, 1);
            p = put_i32(p, 0);
            p = put_i32(p, FLOAT8_OID);
            p = put_i32(p, (int32_t)n_proba);
            p = put_i32(p, 1);
            for (j = 0; j < n_proba; j++) {
                p = put_i32(p, 8);
                p = put_f64(p, proba[j]);
            }
        }
        if (lat == Py_None) {
            p = put_i32(p, -1);
        }
        else {
            p = put_i32(p, 4);
            p = put_f32(p, (float)latency);
        }
        if (segment == NULL) {
            p = put_i32(p, -1);
        }
        else {
            p = put_bytes(p, PyBytes_AS_STRING(segment), PyBytes_GET_SIZE(segment));
            Py_DECREF(segment);
        }
        if (p - PyBytes_AS_STRING(row) != size) { /* cannot happen: the sizes above */
            Py_DECREF(row);
            PyErr_SetString(PyExc_SystemError, "encode_columns: row size mismatch");
            goto error;
        }
        PyList_SET_ITEM(out, i, row);
        release(elements, n_cat);
        continue;

    row_unusual: /* this row is not the plain case: the careful path's */
        PyErr_Clear();
        release(elements, n_cat);
        Py_INCREF(Py_None);
        PyList_SET_ITEM(out, i, Py_None); /* the caller encodes this one the Python way */
    }
    PyMem_Free(nums);
    PyMem_Free(elements);
    return out;

error:
    PyMem_Free(nums);
    release(elements, n_cat);
    PyMem_Free(elements);
    Py_XDECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"encode_rows", encode_rows, METH_VARARGS,
     "encode_rows(feats, ids, times, preds, lats, probas, segments, numeric, categorical, "
     "head, version_num_head, cat_head, texts, format_id, order, segment_field, micros_of, "
     "n_keys) -> list[bytes | None]\n\n"
     "fast.encode_rows_py's rows: a COPY tuple per plain record, None for the others."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "monitor.sdk.postgres._speedups",
    "The fast write path's encoder in C (see monitor.sdk.postgres.fast).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
