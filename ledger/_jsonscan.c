/*
 * A screen for document contents on the ledger's hot path (see ledger/encoding.py).
 *
 * may_hold_float_or_long_integer(data) answers False only when the JSON text `data`
 * certainly holds no number with a fraction or an exponent and no integer of 16 or more
 * digits (every integer of at most 15 digits is below 2^53). It reads the bytes once,
 * skipping strings, and builds no objects. It is meant for text the JSON parser has
 * already accepted; on anything else its answer only decides whether the exact check
 * runs. The pure-Python twin in ledger/encoding.py is the specification; a property
 * test keeps the two equal.
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

static PyMethodDef methods[] = {
    {"may_hold_float_or_long_integer", may_hold_float_or_long_integer, METH_O,
     "False only if the JSON text holds no fraction, exponent or integer of 16+ digits."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ledger._jsonscan", NULL, -1, methods,
};

PyMODINIT_FUNC PyInit__jsonscan(void)
{
    return PyModule_Create(&module);
}
