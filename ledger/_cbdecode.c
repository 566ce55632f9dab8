/*
 * The canonical MessagePack decoder of the ledger's hot path (see ledger/encoding.py).
 *
 * decode(data) returns the value the canonical bytes `data` encode (DESIGN section 2),
 * reading them once: maps become dicts with str keys in the order read, arrays lists,
 * str str, bin bytes, integers int, nil/true/false None/True/False. It raises
 * ValueError for anything that is not canonical or not a value: a float, an extension
 * type, a reserved byte, an integer or length not in its smallest form, a map key that
 * is not a str or not strictly after the previous key in UTF-8 byte order, text that is
 * not UTF-8, bytes missing or left over, nesting beyond MAX_DEPTH. The ValueError only
 * says "not canonical": the caller then runs the Python reader, which names the fault.
 *
 * The specification is decode_cb_reference in ledger/encoding.py (msgpack's decoder
 * plus the canonical checks); property tests keep the two equal on any bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct {
    const unsigned char *p;
    Py_ssize_t n;
    Py_ssize_t i;
} Reader;

static PyObject *not_canonical(const char *why)
{
    PyErr_SetString(PyExc_ValueError, why);
    return NULL;
}

/* Read `size` big-endian bytes as an unsigned integer; 0 if the input ends first. */
static int read_uint(Reader *r, int size, uint64_t *out)
{
    uint64_t value = 0;
    int k;
    if (r->n - r->i < size) {
        return 0;
    }
    for (k = 0; k < size; k++) {
        value = (value << 8) | r->p[r->i + k];
    }
    r->i += size;
    *out = value;
    return 1;
}

static PyObject *read_value(Reader *r, int depth);

static PyObject *read_str(Reader *r, uint64_t length)
{
    PyObject *text;
    if ((uint64_t)(r->n - r->i) < length) {
        return not_canonical("truncated str");
    }
    text = PyUnicode_DecodeUTF8((const char *)r->p + r->i, (Py_ssize_t)length, "strict");
    if (text == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            return not_canonical("str is not UTF-8");
        }
        return NULL;
    }
    r->i += (Py_ssize_t)length;
    return text;
}

static PyObject *read_bin(Reader *r, uint64_t length)
{
    PyObject *data;
    if ((uint64_t)(r->n - r->i) < length) {
        return not_canonical("truncated bin");
    }
    data = PyBytes_FromStringAndSize((const char *)r->p + r->i, (Py_ssize_t)length);
    if (data != NULL) {
        r->i += (Py_ssize_t)length;
    }
    return data;
}

static PyObject *read_array(Reader *r, uint64_t count, int depth)
{
    PyObject *list;
    uint64_t k;
    /* Every item takes at least one byte: a count beyond what is left is a lie. */
    if ((uint64_t)(r->n - r->i) < count) {
        return not_canonical("truncated array");
    }
    list = PyList_New((Py_ssize_t)count);
    if (list == NULL) {
        return NULL;
    }
    for (k = 0; k < count; k++) {
        PyObject *item = read_value(r, depth + 1);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)k, item);
    }
    return list;
}

/* The length of a str header at r->i, with r->i moved past it; -1 if it is not one. */
static int64_t read_key_length(Reader *r)
{
    unsigned char tag;
    uint64_t length;
    if (r->i >= r->n) {
        return -1;
    }
    tag = r->p[r->i++];
    if (tag >= 0xA0 && tag <= 0xBF) {
        return tag & 0x1F;
    }
    if (tag == 0xD9 && read_uint(r, 1, &length) && length >= 32) {
        return (int64_t)length;
    }
    if (tag == 0xDA && read_uint(r, 2, &length) && length >= 0x100) {
        return (int64_t)length;
    }
    if (tag == 0xDB && read_uint(r, 4, &length) && length >= 0x10000) {
        return (int64_t)length;
    }
    return -1;
}

static PyObject *read_map(Reader *r, uint64_t count, int depth)
{
    PyObject *dict;
    const unsigned char *previous = NULL;
    Py_ssize_t previous_length = 0;
    uint64_t k;
    if ((uint64_t)(r->n - r->i) / 2 < count) {
        return not_canonical("truncated map");
    }
    dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    for (k = 0; k < count; k++) {
        PyObject *key, *value;
        const unsigned char *encoded;
        int64_t length = read_key_length(r);
        if (length < 0) {
            Py_DECREF(dict);
            return not_canonical("map key is not a str in its smallest form");
        }
        if ((uint64_t)(r->n - r->i) < (uint64_t)length) {
            Py_DECREF(dict);
            return not_canonical("truncated map key");
        }
        encoded = r->p + r->i;
        if (previous != NULL) {
            /* Strictly after the previous key in UTF-8 byte order: sorted, none twice. */
            Py_ssize_t common = previous_length < length ? previous_length : (Py_ssize_t)length;
            int order = memcmp(previous, encoded, (size_t)common);
            if (order > 0 || (order == 0 && previous_length >= length)) {
                Py_DECREF(dict);
                return not_canonical("map keys not strictly sorted");
            }
        }
        key = read_str(r, (uint64_t)length);
        if (key == NULL) {
            Py_DECREF(dict);
            return NULL;
        }
        previous = encoded;
        previous_length = (Py_ssize_t)length;
        value = read_value(r, depth + 1);
        if (value == NULL) {
            Py_DECREF(key);
            Py_DECREF(dict);
            return NULL;
        }
        if (PyDict_SetItem(dict, key, value) < 0) {
            Py_DECREF(key);
            Py_DECREF(value);
            Py_DECREF(dict);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(value);
    }
    return dict;
}

static PyObject *read_value(Reader *r, int depth)
{
    unsigned char tag;
    uint64_t value;
    if (depth > MAX_DEPTH) {
        return not_canonical("nested too deep");
    }
    if (r->i >= r->n) {
        return not_canonical("truncated");
    }
    tag = r->p[r->i++];
    if (tag <= 0x7F) {
        return PyLong_FromLong(tag);
    }
    if (tag >= 0xE0) {
        return PyLong_FromLong((long)tag - 0x100);
    }
    if (tag <= 0x8F) {
        return read_map(r, tag & 0x0F, depth);
    }
    if (tag <= 0x9F) {
        return read_array(r, tag & 0x0F, depth);
    }
    if (tag <= 0xBF) {
        return read_str(r, tag & 0x1F);
    }
    switch (tag) {
    case 0xC0:
        Py_RETURN_NONE;
    case 0xC2:
        Py_RETURN_FALSE;
    case 0xC3:
        Py_RETURN_TRUE;
    case 0xC4:
        if (!read_uint(r, 1, &value)) break;
        return read_bin(r, value);
    case 0xC5:
        if (!read_uint(r, 2, &value) || value < 0x100) break;
        return read_bin(r, value);
    case 0xC6:
        if (!read_uint(r, 4, &value) || value < 0x10000) break;
        return read_bin(r, value);
    case 0xCC:
        if (!read_uint(r, 1, &value) || value < 0x80) break;
        return PyLong_FromUnsignedLongLong(value);
    case 0xCD:
        if (!read_uint(r, 2, &value) || value < 0x100) break;
        return PyLong_FromUnsignedLongLong(value);
    case 0xCE:
        if (!read_uint(r, 4, &value) || value < 0x10000) break;
        return PyLong_FromUnsignedLongLong(value);
    case 0xCF:
        if (!read_uint(r, 8, &value) || value < 0x100000000ULL) break;
        return PyLong_FromUnsignedLongLong(value);
    case 0xD0:
        if (!read_uint(r, 1, &value) || (int8_t)value >= -0x20) break;
        return PyLong_FromLong((int8_t)value);
    case 0xD1:
        if (!read_uint(r, 2, &value) || (int16_t)value >= -0x80) break;
        return PyLong_FromLong((int16_t)value);
    case 0xD2:
        if (!read_uint(r, 4, &value) || (int32_t)value >= -0x8000) break;
        return PyLong_FromLong((long)(int32_t)value);
    case 0xD3:
        if (!read_uint(r, 8, &value) || (int64_t)value >= -0x80000000LL) break;
        return PyLong_FromLongLong((long long)(int64_t)value);
    case 0xD9:
        if (!read_uint(r, 1, &value) || value < 32) break;
        return read_str(r, value);
    case 0xDA:
        if (!read_uint(r, 2, &value) || value < 0x100) break;
        return read_str(r, value);
    case 0xDB:
        if (!read_uint(r, 4, &value) || value < 0x10000) break;
        return read_str(r, value);
    case 0xDC:
        if (!read_uint(r, 2, &value) || value < 16) break;
        return read_array(r, value, depth);
    case 0xDD:
        if (!read_uint(r, 4, &value) || value < 0x10000) break;
        return read_array(r, value, depth);
    case 0xDE:
        if (!read_uint(r, 2, &value) || value < 16) break;
        return read_map(r, value, depth);
    case 0xDF:
        if (!read_uint(r, 4, &value) || value < 0x10000) break;
        return read_map(r, value, depth);
    default:
        break; /* floats, extension types, the reserved 0xC1 */
    }
    return not_canonical("not a canonical value");
}

static PyObject *decode(PyObject *self, PyObject *arg)
{
    Reader r;
    PyObject *value;
    (void)self;
    if (!PyBytes_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "expected bytes, got %.80s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    r.p = (const unsigned char *)PyBytes_AS_STRING(arg);
    r.n = PyBytes_GET_SIZE(arg);
    r.i = 0;
    value = read_value(&r, 0);
    if (value != NULL && r.i != r.n) {
        Py_DECREF(value);
        return not_canonical("bytes after the value");
    }
    return value;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_O,
     "The value canonical MessagePack bytes encode; ValueError if they are not canonical."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ledger._cbdecode", NULL, -1, methods,
};

PyMODINIT_FUNC PyInit__cbdecode(void)
{
    return PyModule_Create(&module);
}
