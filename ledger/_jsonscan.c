/*
 * Screens for document contents on the ledger's hot path (see ledger/encoding.py).
 *
 * may_hold_float_or_long_integer(data) answers False only when the JSON text `data`
 * certainly holds no number with a fraction or an exponent and no integer of 16 or more
 * digits (every integer of at most 15 digits is below 2^53). It reads the bytes once,
 * skipping strings, and builds no objects. It is meant for text the JSON parser has
 * already accepted; on anything else its answer only decides whether the exact check
 * runs. The pure-Python twin in ledger/encoding.py is the specification; a property
 * test keeps the two equal.
 *
 * is_canonical_document(data) answers True only when `data` is exactly the RFC 8785
 * (JCS) form of the JSON value it spells, and that value holds no float and no integer
 * of magnitude beyond 2^53 - 1: no whitespace, object keys in strictly increasing
 * UTF-16 order (so none twice), strings escaped exactly as JCS escapes them, integers
 * in their shortest form, valid UTF-8, nothing after the value. False means "not shown
 * canonical here": the caller then runs the exact Python check, which names the fault
 * or, for what this screen leaves to it (a key holding a character beyond U+FFFF,
 * nesting beyond JSON_MAX_DEPTH), accepts. The specification is the Python path
 * (`jcs(parse(data)) == data`); property tests hold the screen to it. The scanner
 * lives in ledger/_jsoncanon.h, shared with ledger/_docschema.c.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static int scan(const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    Py_ssize_t digits = 0;
    while (i < n) {
        unsigned char c = p[i++];
        if (c == '"') {
            /* Skip the string; a backslash escapes the byte after it. */
            while (i < n) {
                c = p[i++];
                if (c == '\\') {
                    i++;
                } else if (c == '"') {
                    break;
                }
            }
            digits = 0;
        } else if (c >= '0' && c <= '9') {
            if (++digits >= 16) {
                return 1;
            }
        } else {
            if (digits && (c == '.' || c == 'e' || c == 'E')) {
                return 1;
            }
            digits = 0;
        }
    }
    return 0;
}

static PyObject *may_hold_float_or_long_integer(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    int found;
    (void)self;
    if (!PyBytes_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "expected bytes, got %.80s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    found = scan((const unsigned char *)view.buf, view.len);
    PyBuffer_Release(&view);
    return PyBool_FromLong(found);
}

/* --- is_canonical_document ------------------------------------------------ */

#include "_jsoncanon.h"

static PyObject *is_canonical_document(PyObject *self, PyObject *arg)
{
    int shown;
    (void)self;
    if (!PyBytes_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "expected bytes, got %.80s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    shown = is_canonical((const unsigned char *)PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg), NULL);
    return PyBool_FromLong(shown);
}

static PyMethodDef methods[] = {
    {"may_hold_float_or_long_integer", may_hold_float_or_long_integer, METH_O,
     "False only if the JSON text holds no fraction, exponent or integer of 16+ digits."},
    {"is_canonical_document", is_canonical_document, METH_O,
     "True only if the bytes are the RFC 8785 form of a float-free JSON value with safe integers."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ledger._jsonscan", NULL, -1, methods,
};

PyMODINIT_FUNC PyInit__jsonscan(void)
{
    fill_plain();
    return PyModule_Create(&module);
}
