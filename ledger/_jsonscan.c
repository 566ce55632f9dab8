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
 * nesting beyond MAX_DEPTH), accepts. The specification is the Python path
 * (`jcs(parse(data)) == data`); property tests hold the screen to it.
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

#define MAX_DEPTH 512
#define NOT_SHOWN 0
#define SHOWN 1

typedef struct {
    const unsigned char *p;
    Py_ssize_t n;
    Py_ssize_t i;
} Reader;

/* The length of the valid, shortest UTF-8 sequence at p[0..left), or 0. */
static int utf8_length(const unsigned char *p, Py_ssize_t left)
{
    unsigned char c = p[0];
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        return left >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) {
            return 0;
        }
        if (c == 0xE0 && p[1] < 0xA0) {
            return 0; /* overlong */
        }
        if (c == 0xED && p[1] >= 0xA0) {
            return 0; /* a surrogate */
        }
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) {
            return 0;
        }
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)) {
            return 0; /* overlong, or beyond U+10FFFF */
        }
        return 4;
    }
    return 0;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1; /* JCS writes lowercase hex only */
}

/*
 * A string at r->i (the opening quote), written as JCS writes it. On success r->i is
 * past the closing quote, start and end receive the bounds of the text between the quotes, and astral
 * says whether it holds a character beyond U+FFFF.
 */
/* PLAIN[c]: byte c stands for itself inside a JCS string (ASCII, not a control, quote
 * or backslash). Most of a document is such bytes; the table makes each one a single
 * load and test. */
static unsigned char PLAIN[256];

static void fill_plain(void)
{
    int c;
    for (c = 0x20; c < 0x80; c++) {
        PLAIN[c] = c != '"' && c != '\\';
    }
}

static int read_string(Reader *r, Py_ssize_t *start, Py_ssize_t *end, int *astral, int *escaped)
{
    const unsigned char *p = r->p;
    Py_ssize_t i = r->i + 1;
    *start = i;
    *astral = 0;
    *escaped = 0;
    while (i < r->n) {
        unsigned char c;
        while (i < r->n && PLAIN[p[i]]) {
            i++;
        }
        if (i >= r->n) {
            break;
        }
        c = p[i];
        if (c == '"') {
            *end = i;
            r->i = i + 1;
            return SHOWN;
        }
        if (c < 0x20) {
            return NOT_SHOWN; /* a control character must be escaped */
        }
        if (c == '\\') {
            unsigned char e;
            *escaped = 1;
            if (i + 1 >= r->n) {
                return NOT_SHOWN;
            }
            e = p[i + 1];
            if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                i += 2;
                continue;
            }
            if (e == 'u') {
                /* Only the controls without a short escape are written as \u00xx. */
                int hi, lo, code;
                if (i + 5 >= r->n || p[i + 2] != '0' || p[i + 3] != '0') {
                    return NOT_SHOWN;
                }
                hi = hex_value(p[i + 4]);
                lo = hex_value(p[i + 5]);
                if (hi < 0 || lo < 0) {
                    return NOT_SHOWN;
                }
                code = hi * 16 + lo;
                if (code >= 0x20 || code == 0x08 || code == 0x09 || code == 0x0A || code == 0x0C
                    || code == 0x0D) {
                    return NOT_SHOWN;
                }
                i += 6;
                continue;
            }
            return NOT_SHOWN; /* an escaped solidus, for one: JCS writes '/' as it is */
        }
        {
            int length = utf8_length(p + i, r->n - i);
            if (length == 0) {
                return NOT_SHOWN;
            }
            if (length == 4) {
                *astral = 1;
            }
            i += length;
        }
    }
    return NOT_SHOWN;
}

/* The next character of a string body written as read_string accepts it. */
static long next_character(const unsigned char *p, Py_ssize_t *i)
{
    unsigned char c = p[*i];
    if (c == '\\') {
        unsigned char e = p[*i + 1];
        *i += 2;
        switch (e) {
        case 'b': return 0x08;
        case 'f': return 0x0C;
        case 'n': return 0x0A;
        case 'r': return 0x0D;
        case 't': return 0x09;
        case 'u': {
            long code = hex_value(p[*i + 2]) * 16 + hex_value(p[*i + 3]);
            *i += 4;
            return code;
        }
        default: return e; /* '"' or '\\' */
        }
    }
    if (c < 0x80) {
        *i += 1;
        return c;
    }
    if (c < 0xE0) {
        long code = ((long)(c & 0x1F) << 6) | (p[*i + 1] & 0x3F);
        *i += 2;
        return code;
    }
    {
        /* Three bytes: read_string sent every key with four-byte sequences elsewhere. */
        long code = ((long)(c & 0x0F) << 12) | ((long)(p[*i + 1] & 0x3F) << 6) | (p[*i + 2] & 0x3F);
        *i += 3;
        return code;
    }
}

/*
 * Whether key a sorts strictly before key b. For characters up to U+FFFF, UTF-16 order
 * is code point order; keys holding others are left to the exact check.
 */
static int is_before(const unsigned char *p, Py_ssize_t a, Py_ssize_t a_end, Py_ssize_t b, Py_ssize_t b_end)
{
    while (a < a_end && b < b_end) {
        long x = next_character(p, &a);
        long y = next_character(p, &b);
        if (x != y) {
            return x < y;
        }
    }
    return a == a_end && b < b_end;
}

/* An integer at r->i in shortest form and within 2^53 - 1 in magnitude. */
static int read_integer(Reader *r)
{
    const unsigned char *p = r->p;
    Py_ssize_t i = r->i;
    Py_ssize_t first;
    unsigned long long value = 0;
    int negative = 0;
    if (p[i] == '-') {
        negative = 1;
        i++;
    }
    first = i;
    while (i < r->n && p[i] >= '0' && p[i] <= '9') {
        value = value * 10 + (unsigned long long)(p[i] - '0');
        i++;
        if (i - first > 16) {
            return NOT_SHOWN;
        }
    }
    if (i == first || (p[first] == '0' && (i - first > 1 || negative))) {
        return NOT_SHOWN; /* no digits, a leading zero, or -0 */
    }
    if (value > 9007199254740991ULL) {
        return NOT_SHOWN;
    }
    if (i < r->n && (p[i] == '.' || p[i] == 'e' || p[i] == 'E')) {
        return NOT_SHOWN;
    }
    r->i = i;
    return SHOWN;
}

static int read_literal(Reader *r, const char *word, Py_ssize_t length)
{
    if (r->n - r->i < length || memcmp(r->p + r->i, word, (size_t)length) != 0) {
        return NOT_SHOWN;
    }
    r->i += length;
    return SHOWN;
}

typedef struct {
    unsigned char container; /* '{' or '[' */
    Py_ssize_t key_start;    /* the previous key of an object, or -1 */
    Py_ssize_t key_end;
    int key_escaped;
} Frame;

static int is_canonical(const unsigned char *p, Py_ssize_t n)
{
    Reader r = {p, n, 0};
    Frame stack[MAX_DEPTH];
    int depth = 0;
    for (;;) {
        /* A value at r.i. */
        unsigned char c;
        if (r.i >= n) {
            return NOT_SHOWN;
        }
        c = p[r.i];
        if (c == '{' || c == '[') {
            if (depth == MAX_DEPTH) {
                return NOT_SHOWN;
            }
            r.i++;
            if (r.i < n && p[r.i] == (c == '{' ? '}' : ']')) {
                r.i++;
            } else {
                stack[depth].container = c;
                stack[depth].key_start = -1;
                stack[depth].key_end = -1;
                stack[depth].key_escaped = 0;
                depth++;
                if (c == '{') {
                    goto key;
                }
                continue;
            }
        } else if (c == '"') {
            Py_ssize_t start, end;
            int astral, escaped;
            if (!read_string(&r, &start, &end, &astral, &escaped)) {
                return NOT_SHOWN;
            }
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (!read_integer(&r)) {
                return NOT_SHOWN;
            }
        } else if (c == 't') {
            if (!read_literal(&r, "true", 4)) {
                return NOT_SHOWN;
            }
        } else if (c == 'f') {
            if (!read_literal(&r, "false", 5)) {
                return NOT_SHOWN;
            }
        } else if (c == 'n') {
            if (!read_literal(&r, "null", 4)) {
                return NOT_SHOWN;
            }
        } else {
            return NOT_SHOWN;
        }
        /* After a value: close containers, or go on to the next member. */
        for (;;) {
            Frame *top;
            if (depth == 0) {
                return r.i == n ? SHOWN : NOT_SHOWN;
            }
            top = &stack[depth - 1];
            if (r.i >= n) {
                return NOT_SHOWN;
            }
            if (p[r.i] == ',') {
                r.i++;
                if (top->container == '{') {
                    goto key;
                }
                break;
            }
            if (p[r.i] != (top->container == '{' ? '}' : ']')) {
                return NOT_SHOWN;
            }
            r.i++;
            depth--;
        }
        continue;
    key:
        {
            Frame *top = &stack[depth - 1];
            Py_ssize_t start, end;
            int astral, escaped;
            if (r.i >= n || p[r.i] != '"' || !read_string(&r, &start, &end, &astral, &escaped) || astral) {
                return NOT_SHOWN;
            }
            if (top->key_start >= 0) {
                int before;
                if (escaped || top->key_escaped) {
                    before = is_before(p, top->key_start, top->key_end, start, end);
                } else {
                    /* Without escapes the bytes are the UTF-8 of the key, whose byte
                     * order is code point order: one memcmp. */
                    Py_ssize_t a = top->key_end - top->key_start, b = end - start;
                    int order = memcmp(p + top->key_start, p + start, (size_t)(a < b ? a : b));
                    before = order < 0 || (order == 0 && a < b);
                }
                if (!before) {
                    return NOT_SHOWN;
                }
            }
            top->key_start = start;
            top->key_end = end;
            top->key_escaped = escaped;
            if (r.i >= n || p[r.i] != ':') {
                return NOT_SHOWN;
            }
            r.i++;
        }
    }
}

static PyObject *is_canonical_document(PyObject *self, PyObject *arg)
{
    int shown;
    (void)self;
    if (!PyBytes_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "expected bytes, got %.80s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    shown = is_canonical((const unsigned char *)PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg));
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
