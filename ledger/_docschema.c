/*
 * The compiled fast path of document validation (see ledger/documents.py).
 *
 * Schema(spec).is_valid(value) answers one question: would the schema's reference rule
 * tree accept this parsed JSON value? It walks the value against a tree compiled once
 * from `spec`, and calls no Python code per object, field or code: only a cross-field
 * rule of an object (few, and rare in documents) and a "python" leaf call back. When it
 * says False, documents.py runs the reference rules to name the field and the rule.
 *
 * The specification is Python: the reference rules and the generated predicate in
 * ledger/documents.py, and the code predicates in ledger/codes.py. Every leaf below
 * reproduces its Python twin exactly, code point by code point (the regular
 * expressions there are ASCII-only, and str.isspace is Py_UNICODE_ISSPACE on every
 * character); tests/property/test_docschema_compiled.py holds them equal.
 *
 * The spec is a nested tuple that documents.py builds from a schema's node tree:
 *
 *   ("object", ((key, required, spec), ...), rule)
 *       A dict. Each named member in order: value.get(key) is None passes unless the
 *       member is required; any other value must pass its spec. Then, if rule is not
 *       None, rule(value) must be true. Members the schema does not name are ignored.
 *   ("array", min_items, spec)
 *       A list of at least min_items items, each passing spec.
 *   ("text_or_object", object_spec)
 *       A dict passing object_spec, or else "text" (below).
 *   ("leaf", kind, param)
 *       One value; every kind but "bool", "int_range" and "python" wants an exact str:
 *       "string"               None          any str
 *       "text"                 None          a str with a character that is not
 *                                            whitespace (not "", not str.isspace())
 *       "bool"                 None          True or False
 *       "int_range"            (lo, hi)      an int, not a bool, with lo <= value <= hi
 *       "ascii_graphic"        (min, max)    min to max characters from '!' to '~'
 *       "digits"               (min, max)    min to max ASCII digits
 *       "in_set"               frozenset     a member of the set
 *       "hs_code"              None          codes.is_hs_code
 *       "locode"               frozenset     codes.is_locode; the set holds the country
 *                                            codes its two letters must name
 *       "datetime"             None          codes.is_rfc3339_datetime
 *       "date_or_datetime"     None          codes.is_rfc3339_date or ..._datetime
 *       "decimal"              None          codes.is_decimal
 *       "non_negative_decimal" None          codes.is_non_negative_decimal
 *       "python"               callable      param(value) is true (a leaf without a
 *                                            C twin; exceptions propagate)
 *
 * The walk descends only where the spec does, so its recursion is bounded by the
 * spec's depth (at most MAX_DEPTH), whatever the document. An exception raised by a
 * rule or a "python" leaf, or by a dict lookup, propagates as it would from the
 * generated Python predicate.
 *
 * From the bytes, without parsing them into Python objects first:
 *
 *   scan_canonical(data) -> Scanned | None
 *       The canonical scanner of ledger/_jsoncanon.h (the one behind
 *       _jsonscan.is_canonical_document, so the same verdict) run with a token sink.
 *       None when it does not show `data` canonical; else the document as a table of
 *       tokens over the bytes, which the Scanned keeps alive.
 *   Scanned.is_object            the document is a JSON object
 *   Scanned.get(key, default=None)
 *       What orjson.loads(data).get(key, default) gives for an object: the member
 *       as a Python value (JSON null is None, so pass a default to tell it from an
 *       absent member); `default` for a document that is not an object.
 *   Scanned.value()              the whole document, as orjson.loads(data) gives it
 *   Schema.is_valid_scanned(scanned)
 *       Schema.is_valid(orjson.loads(data)), walking the tokens: a string is viewed
 *       in place when it is ASCII without escapes, and decoded into a str otherwise
 *       or when an "in_set" leaf needs one; a rule or a "python" leaf gets the
 *       Python value of its subtree, built for it. The same leaf predicates serve
 *       both walks.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_jsoncanon.h"

#define MAX_DEPTH 64
/* An object of at most this many fields matches a scanned object's members in one
 * merge; a larger one (no schema has one) looks each field up. */
#define MAX_MERGE_FIELDS 32

enum { N_OBJECT, N_ARRAY, N_TEXT_OR_OBJECT, N_LEAF };

enum {
    L_STRING,
    L_TEXT,
    L_BOOL,
    L_INT_RANGE,
    L_ASCII_GRAPHIC,
    L_DIGITS,
    L_IN_SET,
    L_HS_CODE,
    L_LOCODE,
    L_DATETIME,
    L_DATE_OR_DATETIME,
    L_DECIMAL,
    L_NON_NEGATIVE_DECIMAL,
    L_PYTHON,
};

static const struct {
    const char *name;
    int leaf;
} LEAF_NAMES[] = {
    {"string", L_STRING},
    {"text", L_TEXT},
    {"bool", L_BOOL},
    {"int_range", L_INT_RANGE},
    {"ascii_graphic", L_ASCII_GRAPHIC},
    {"digits", L_DIGITS},
    {"in_set", L_IN_SET},
    {"hs_code", L_HS_CODE},
    {"locode", L_LOCODE},
    {"datetime", L_DATETIME},
    {"date_or_datetime", L_DATE_OR_DATETIME},
    {"decimal", L_DECIMAL},
    {"non_negative_decimal", L_NON_NEGATIVE_DECIMAL},
    {"python", L_PYTHON},
};

typedef struct Node Node;

typedef struct {
    const char *text; /* borrowed: the UTF-8 a str of the spec caches */
    Py_ssize_t length;
} Name;

typedef struct {
    Py_ssize_t field;  /* an index into an object's fields */
    int same_as_next;  /* the next in order has the same name */
} Rank;

typedef struct {
    PyObject *key; /* borrowed from the spec, which the Schema owns */
    int required;
    Node *node;
    char *name; /* the key as JCS writes it between quotes, the bytes of a scanned member's key */
    Py_ssize_t name_len; /* -1: no canonical document can hold the key */
} Field;

struct Node {
    int kind; /* N_* */
    int leaf; /* L_*, for N_LEAF */
    long long lo, hi; /* int_range bounds; string lengths; an array's min_items (lo) */
    PyObject *obj; /* borrowed: in_set's set, python's callable, an object's rule (or NULL) */
    unsigned char *countries; /* locode: 26 x 26 table of two-letter country codes */
    Name *names; /* in_set of a frozenset of str: its members' UTF-8, in compare_names order */
    Py_ssize_t nnames;
    Py_ssize_t nfields;
    Field *fields; /* object */
    Rank *order; /* object, for a scanned document: its matchable fields in key byte order */
    Py_ssize_t norder;
    int merge; /* whether a scanned object's members are matched to fields by one merge */
    Node *item; /* array item; text_or_object's object */
};

/* --- strings ------------------------------------------------------------------ */

/* A str's code points, read whatever its storage kind. */
typedef struct {
    int kind;
    const void *data;
    Py_ssize_t n;
} Str;

static inline Py_UCS4 at(const Str *s, Py_ssize_t i)
{
    return PyUnicode_READ(s->kind, s->data, i);
}

static inline int is_digit(Py_UCS4 c)
{
    return c >= '0' && c <= '9';
}

static inline int is_upper(Py_UCS4 c)
{
    return c >= 'A' && c <= 'Z';
}

/* The digits of s[i:j] as a number; the caller has checked they are ASCII digits. */
static int number_at(const Str *s, Py_ssize_t i, Py_ssize_t j)
{
    int value = 0;
    for (; i < j; i++) {
        value = value * 10 + (int)(at(s, i) - '0');
    }
    return value;
}

/* Not empty and not all whitespace: `x != '' and not x.isspace()`. */
static int is_text(const Str *s)
{
    for (Py_ssize_t i = 0; i < s->n; i++) {
        if (!Py_UNICODE_ISSPACE(at(s, i))) {
            return 1;
        }
    }
    return 0;
}

static int is_in_range(const Str *s, long long min_len, long long max_len, Py_UCS4 lo, Py_UCS4 hi)
{
    if (s->n < min_len || s->n > max_len) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < s->n; i++) {
        Py_UCS4 c = at(s, i);
        if (c < lo || c > hi) {
            return 0;
        }
    }
    return 1;
}

/* codes._HS_CODE = [0-9]{4}\.[0-9]{2}(?:\.?[0-9]{2,4}){0,3}|[0-9]{6,14}, and at most
 * 14 digits. After the dotted form's "dddd.dd", the rest is digit runs separated by
 * single dots, each dot starting a group; a run of L digits splits into k groups of 2
 * to 4 exactly when 2k <= L <= 4k, so it needs at least ceil(L / 4) groups and fits
 * only if L >= 2. The rest matches when the runs need at most 3 groups in all. */
static int is_hs_code(const Str *s)
{
    Py_ssize_t n = s->n;
    Py_ssize_t i;
    Py_ssize_t digits = 6;
    int groups = 0;
    int after_dot = 0;
    if (n < 6) {
        return 0;
    }
    for (i = 0; i < n && is_digit(at(s, i)); i++) {
    }
    if (i == n) {
        return n <= 14;
    }
    if (n < 7 || i != 4 || at(s, 4) != '.' || !is_digit(at(s, 5)) || !is_digit(at(s, 6))) {
        return 0;
    }
    i = 7;
    for (;;) {
        Py_ssize_t start = i;
        Py_ssize_t run;
        while (i < n && is_digit(at(s, i))) {
            i++;
        }
        run = i - start;
        if (run == 1 || (run == 0 && after_dot)) {
            return 0;
        }
        groups += (int)((run + 3) / 4);
        digits += run;
        if (i == n) {
            break;
        }
        if (at(s, i) != '.') {
            return 0;
        }
        i++;
        after_dot = 1;
    }
    return groups <= 3 && digits <= 14;
}

/* codes._LOCODE = (?:unece\.un\.org:locode:)?[A-Z]{2}[A-Z2-9]{3}, and the two letters
 * name an assigned country. */
static int is_locode(const Str *s, const unsigned char *countries)
{
    static const char prefix[] = "unece.un.org:locode:";
    const Py_ssize_t prefix_len = (Py_ssize_t)sizeof(prefix) - 1;
    Py_ssize_t off;
    if (s->n == 5) {
        off = 0;
    } else if (s->n == prefix_len + 5) {
        for (Py_ssize_t i = 0; i < prefix_len; i++) {
            if (at(s, i) != (Py_UCS4)prefix[i]) {
                return 0;
            }
        }
        off = prefix_len;
    } else {
        return 0;
    }
    for (Py_ssize_t i = off; i < off + 5; i++) {
        Py_UCS4 c = at(s, i);
        if (!is_upper(c) && !(i >= off + 2 && c >= '2' && c <= '9')) {
            return 0;
        }
    }
    return countries[(at(s, off) - 'A') * 26 + (at(s, off + 1) - 'A')];
}

static const int DAYS_IN_MONTH[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

/* codes._DATE_PART = [0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01]) at s[0:10]
 * (the caller has checked the length), and the day exists in its month
 * (codes.is_calendar_date, leap years included). */
static int is_date_part(const Str *s)
{
    Py_UCS4 m0 = at(s, 5), m1 = at(s, 6), d0 = at(s, 8), d1 = at(s, 9);
    int year, month, day;
    for (Py_ssize_t i = 0; i < 4; i++) {
        if (!is_digit(at(s, i))) {
            return 0;
        }
    }
    if (at(s, 4) != '-' || at(s, 7) != '-') {
        return 0;
    }
    if (!((m0 == '0' && m1 >= '1' && m1 <= '9') || (m0 == '1' && m1 >= '0' && m1 <= '2'))) {
        return 0;
    }
    if (!((d0 == '0' && d1 >= '1' && d1 <= '9') || ((d0 == '1' || d0 == '2') && is_digit(d1)) ||
          (d0 == '3' && (d1 == '0' || d1 == '1')))) {
        return 0;
    }
    day = number_at(s, 8, 10);
    if (day <= 28) {
        return 1;
    }
    year = number_at(s, 0, 4);
    month = number_at(s, 5, 7);
    if (month == 2 && day == 29) {
        return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    }
    return day <= DAYS_IN_MONTH[month];
}

/* [01][0-9]|2[0-3] */
static int is_hour(Py_UCS4 c0, Py_UCS4 c1)
{
    return ((c0 == '0' || c0 == '1') && is_digit(c1)) || (c0 == '2' && c1 >= '0' && c1 <= '3');
}

/* [0-5][0-9] */
static int is_minute(Py_UCS4 c0, Py_UCS4 c1)
{
    return c0 >= '0' && c0 <= '5' && is_digit(c1);
}

/* codes.is_rfc3339_datetime: the date part, then
 * [Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?
 * (?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]) */
static int is_datetime(const Str *s)
{
    Py_ssize_t n = s->n;
    Py_ssize_t i = 19;
    Py_UCS4 c;
    if (n < 20 || !is_date_part(s)) {
        return 0;
    }
    c = at(s, 10);
    if (c != 'T' && c != 't') {
        return 0;
    }
    if (!is_hour(at(s, 11), at(s, 12)) || at(s, 13) != ':' || !is_minute(at(s, 14), at(s, 15)) ||
        at(s, 16) != ':') {
        return 0;
    }
    if (!is_minute(at(s, 17), at(s, 18)) && !(at(s, 17) == '6' && at(s, 18) == '0')) {
        return 0;
    }
    if (at(s, i) == '.') {
        Py_ssize_t start = ++i;
        while (i < n && is_digit(at(s, i))) {
            i++;
        }
        if (i == start || i == n) {
            return 0;
        }
    }
    c = at(s, i);
    if (c == 'Z' || c == 'z') {
        return i + 1 == n;
    }
    return (c == '+' || c == '-') && n - i == 6 && is_hour(at(s, i + 1), at(s, i + 2)) &&
           at(s, i + 3) == ':' && is_minute(at(s, i + 4), at(s, i + 5));
}

/* codes.is_rfc3339_date: exactly the date part. */
static int is_date(const Str *s)
{
    return s->n == 10 && is_date_part(s);
}

/* codes._DECIMAL = -?[0-9]+(?:\.[0-9]+)? and, without the sign, _NON_NEGATIVE_DECIMAL. */
static int is_decimal(const Str *s, int signed_ok)
{
    Py_ssize_t n = s->n;
    Py_ssize_t i = 0;
    Py_ssize_t start;
    if (signed_ok && n > 0 && at(s, 0) == '-') {
        i = 1;
    }
    start = i;
    while (i < n && is_digit(at(s, i))) {
        i++;
    }
    if (i == start) {
        return 0;
    }
    if (i == n) {
        return 1;
    }
    if (at(s, i) != '.') {
        return 0;
    }
    start = ++i;
    while (i < n && is_digit(at(s, i))) {
        i++;
    }
    return i > start && i == n;
}

/* The order of two byte strings (memcmp, then the shorter first): for UTF-8, and so
 * for keys without escapes, the order of their code points. */
static inline int compare_names(const unsigned char *a, Py_ssize_t a_len, const unsigned char *b, Py_ssize_t b_len)
{
    int order;
    if (a_len > 0 && b_len > 0 && a[0] != b[0]) {
        return a[0] < b[0] ? -1 : 1;
    }
    order = memcmp(a, b, (size_t)(a_len < b_len ? a_len : b_len));
    return order != 0 ? order : (a_len > b_len) - (a_len < b_len);
}

/* Whether the ASCII string `s` views is one of node->names, by bisection: in_set on a
 * string viewed in a document's bytes, without making a str of it. For a frozenset of
 * str, equal UTF-8 is equal members. */
static int is_named(const Node *node, const Str *s)
{
    Py_ssize_t lo = 0, hi = node->nnames;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        int order = compare_names((const unsigned char *)node->names[mid].text, node->names[mid].length,
                                  (const unsigned char *)s->data, s->n);
        if (order == 0) {
            return 1;
        }
        if (order < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return 0;
}

/* --- the walk ----------------------------------------------------------------- */

/* 1: valid, 0: invalid, -1: an exception is set. */
static int check(const Node *node, PyObject *value);

static int call_predicate(PyObject *predicate, PyObject *value)
{
    PyObject *result = PyObject_CallOneArg(predicate, value);
    int truth;
    if (result == NULL) {
        return -1;
    }
    truth = PyObject_IsTrue(result);
    Py_DECREF(result);
    return truth;
}

/* 1 with `s` viewing `value` if it is exactly a str, 0 if it is not one, -1 on error. */
static int view_str(PyObject *value, Str *s)
{
    if (!PyUnicode_CheckExact(value)) {
        return 0;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(value) < 0) {
        return -1;
    }
#endif
    s->kind = PyUnicode_KIND(value);
    s->data = PyUnicode_DATA(value);
    s->n = PyUnicode_GET_LENGTH(value);
    return 1;
}

/* A leaf of a kind that wants a str, on the str `s` views. `value` is that str, or
 * NULL when `s` views a document's bytes (made into a str only for a set lookup). */
static int check_string_leaf(const Node *node, const Str *s, PyObject *value)
{
    switch (node->leaf) {
    case L_STRING:
        return 1;
    case L_TEXT:
        return is_text(s);
    case L_ASCII_GRAPHIC:
        return is_in_range(s, node->lo, node->hi, '!', '~');
    case L_DIGITS:
        return is_in_range(s, node->lo, node->hi, '0', '9');
    case L_IN_SET:
        if (value == NULL && node->names != NULL) {
            return is_named(node, s);
        }
        if (value == NULL) {
            PyObject *made = PyUnicode_FromKindAndData(s->kind, s->data, s->n);
            int found;
            if (made == NULL) {
                return -1;
            }
            found = PySet_Contains(node->obj, made);
            Py_DECREF(made);
            return found;
        }
        return PySet_Contains(node->obj, value);
    case L_HS_CODE:
        return is_hs_code(s);
    case L_LOCODE:
        return is_locode(s, node->countries);
    case L_DATETIME:
        return is_datetime(s);
    case L_DATE_OR_DATETIME:
        return is_date(s) || is_datetime(s);
    case L_DECIMAL:
        return is_decimal(s, 1);
    case L_NON_NEGATIVE_DECIMAL:
        return is_decimal(s, 0);
    default:
        PyErr_SetString(PyExc_SystemError, "_docschema: unknown leaf kind");
        return -1;
    }
}

static int check_leaf(const Node *node, PyObject *value)
{
    Str s;
    switch (node->leaf) {
    case L_BOOL:
        return PyBool_Check(value);
    case L_INT_RANGE: {
        int overflow;
        long long number;
        if (!PyLong_CheckExact(value)) {
            return 0;
        }
        number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow) {
            return 0;
        }
        if (number == -1 && PyErr_Occurred()) {
            return -1;
        }
        return node->lo <= number && number <= node->hi;
    }
    case L_PYTHON:
        return call_predicate(node->obj, value);
    default:
        break;
    }
    {
        int is_str = view_str(value, &s);
        if (is_str <= 0) {
            return is_str;
        }
    }
    return check_string_leaf(node, &s, value);
}

static int check_object(const Node *node, PyObject *value)
{
    if (!PyDict_CheckExact(value)) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < node->nfields; i++) {
        const Field *field = &node->fields[i];
        PyObject *item = PyDict_GetItemWithError(value, field->key);
        int ok;
        if (item == NULL && PyErr_Occurred()) {
            return -1;
        }
        if (item == NULL || item == Py_None) {
            if (field->required) {
                return 0;
            }
            continue;
        }
        /* A borrowed reference: hold it while a rule below could change the dict. */
        Py_INCREF(item);
        ok = check(field->node, item);
        Py_DECREF(item);
        if (ok != 1) {
            return ok;
        }
    }
    if (node->obj != NULL) {
        return call_predicate(node->obj, value);
    }
    return 1;
}

static int check_array(const Node *node, PyObject *value)
{
    if (!PyList_CheckExact(value) || PyList_GET_SIZE(value) < node->lo) {
        return 0;
    }
    /* The size is read on every step, as Python's list iteration does. */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
        PyObject *item = PyList_GET_ITEM(value, i);
        int ok;
        Py_INCREF(item);
        ok = check(node->item, item);
        Py_DECREF(item);
        if (ok != 1) {
            return ok;
        }
    }
    return 1;
}

static int check(const Node *node, PyObject *value)
{
    switch (node->kind) {
    case N_LEAF:
        return check_leaf(node, value);
    case N_OBJECT:
        return check_object(node, value);
    case N_ARRAY:
        return check_array(node, value);
    default: /* N_TEXT_OR_OBJECT */
        if (PyDict_CheckExact(value)) {
            return check_object(node->item, value);
        }
        {
            Str s;
            int is_str = view_str(value, &s);
            return is_str <= 0 ? is_str : is_text(&s);
        }
    }
}

/* --- the walk over a scanned document ----------------------------------------- */

/* The document of scan_canonical: its bytes and the scanner's tokens over them. */
typedef struct {
    PyObject_HEAD
    PyObject *data; /* the bytes, kept alive for the tokens that index them */
    const unsigned char *p;
    Token *tokens; /* PyMem */
    Py_ssize_t ntokens;
} ScannedObject;

/* The value of an integer token: shortest form, within 2^53 - 1 (the scanner saw to it). */
static long long integer_at(const unsigned char *p, const Token *token)
{
    Py_ssize_t i = token->start;
    long long value = 0;
    int negative = p[i] == '-';
    for (i += negative; i < token->end; i++) {
        value = value * 10 + (p[i] - '0');
    }
    return negative ? -value : value;
}

/* The string between the quotes at p[start..end) (read_string's flags) as a str.
 * Escapes are undone into a copy first: each stands for one ASCII character (JCS
 * escapes nothing else), and the scanner checked the UTF-8. */
static PyObject *string_at(const ScannedObject *doc, Py_ssize_t start, Py_ssize_t end, int flags)
{
    const unsigned char *p = doc->p;
    Py_ssize_t n = end - start;
    char *copy;
    Py_ssize_t i = start, k = 0;
    PyObject *text;
    if (!(flags & S_ESCAPED)) {
        return PyUnicode_DecodeUTF8((const char *)p + i, n, NULL);
    }
    copy = PyMem_Malloc((size_t)n); /* rare: few document strings hold escapes */
    if (copy == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    while (i < end) {
        copy[k++] = p[i] == '\\' ? (char)next_character(p, &i) : (char)p[i++];
    }
    text = PyUnicode_DecodeUTF8(copy, k, NULL);
    PyMem_Free(copy);
    return text;
}

/* The Python value of the token at `index` and all it holds, exactly what orjson.loads
 * makes of those bytes. The scanner nests at most JSON_MAX_DEPTH deep, which bounds
 * the recursion; the check below only keeps that promise explicit. */
static PyObject *materialize(const ScannedObject *doc, Py_ssize_t index, int depth)
{
    const Token *token = &doc->tokens[index];
    if (depth > JSON_MAX_DEPTH) {
        PyErr_SetString(PyExc_SystemError, "_docschema: a scanned document nested too deeply");
        return NULL;
    }
    switch (token->type) {
    case T_OBJECT: {
        PyObject *object = PyDict_New();
        Py_ssize_t member = index + 1;
        if (object == NULL) {
            return NULL;
        }
        for (Py_ssize_t m = 0; m < token->count; m++) {
            const Token *t = &doc->tokens[member];
            PyObject *name = string_at(doc, t->key_start, t->key_end, t->key_flags);
            PyObject *item = name == NULL ? NULL : materialize(doc, member, depth + 1);
            int status = item == NULL ? -1 : PyDict_SetItem(object, name, item);
            Py_XDECREF(name);
            Py_XDECREF(item);
            if (status < 0) {
                Py_DECREF(object);
                return NULL;
            }
            member = t->next;
        }
        return object;
    }
    case T_ARRAY: {
        PyObject *array = PyList_New(token->count);
        Py_ssize_t item = index + 1;
        if (array == NULL) {
            return NULL;
        }
        for (Py_ssize_t i = 0; i < token->count; i++) {
            PyObject *value = materialize(doc, item, depth + 1);
            if (value == NULL) {
                Py_DECREF(array);
                return NULL;
            }
            PyList_SET_ITEM(array, i, value);
            item = doc->tokens[item].next;
        }
        return array;
    }
    case T_STRING:
        return string_at(doc, token->start, token->end, token->flags);
    case T_INTEGER:
        return PyLong_FromLongLong(integer_at(doc->p, token));
    case T_TRUE:
        Py_RETURN_TRUE;
    case T_FALSE:
        Py_RETURN_FALSE;
    default: /* T_NULL */
        Py_RETURN_NONE;
    }
}

/* The index of the value of the member whose key JCS writes as name[0..length) in the
 * object at `object`, or -1. Canonical keys are unique and escaped one way only, so
 * equal bytes are equal keys. */
static Py_ssize_t find_member(const ScannedObject *doc, Py_ssize_t object, const char *name, Py_ssize_t length)
{
    const Token *tokens = doc->tokens;
    Py_ssize_t member = object + 1;
    for (Py_ssize_t m = 0; m < tokens[object].count; m++) {
        const Token *t = &tokens[member];
        if (t->key_end - t->key_start == length
            && memcmp(doc->p + t->key_start, name, (size_t)length) == 0) {
            return member;
        }
        member = t->next;
    }
    return -1;
}

/* 1 with `s` viewing the string at `index`, 0 if the value is not a string, -1 on
 * error. A plain string is viewed in place; any other is decoded into *made, which
 * the caller releases (NULL when nothing was made). */
static int view_scanned_str(const ScannedObject *doc, Py_ssize_t index, Str *s, PyObject **made)
{
    const Token *token = &doc->tokens[index];
    *made = NULL;
    if (token->type != T_STRING) {
        return 0;
    }
    if (token->flags == 0) {
        s->kind = PyUnicode_1BYTE_KIND;
        s->data = doc->p + token->start;
        s->n = token->end - token->start;
        return 1;
    }
    *made = string_at(doc, token->start, token->end, token->flags);
    if (*made == NULL) {
        return -1;
    }
    return view_str(*made, s);
}

/* A rule or a "python" leaf on the Python value of the token at `index`. */
static int call_predicate_scanned(PyObject *predicate, const ScannedObject *doc, Py_ssize_t index)
{
    PyObject *value = materialize(doc, index, 0);
    int truth;
    if (value == NULL) {
        return -1;
    }
    truth = call_predicate(predicate, value);
    Py_DECREF(value);
    return truth;
}

/* check() on the value at `index`: the same answers, token by token. */
static int check_scanned(const Node *node, const ScannedObject *doc, Py_ssize_t index);

static int check_scanned_leaf(const Node *node, const ScannedObject *doc, Py_ssize_t index)
{
    const Token *token = &doc->tokens[index];
    PyObject *made;
    Str s;
    int ok;
    switch (node->leaf) {
    case L_BOOL:
        return token->type == T_TRUE || token->type == T_FALSE;
    case L_INT_RANGE: {
        /* true and false are their own tokens: never ints here. */
        long long number;
        if (token->type != T_INTEGER) {
            return 0;
        }
        number = integer_at(doc->p, token);
        return node->lo <= number && number <= node->hi;
    }
    case L_PYTHON:
        return call_predicate_scanned(node->obj, doc, index);
    default:
        break;
    }
    ok = view_scanned_str(doc, index, &s, &made);
    if (ok <= 0) {
        Py_XDECREF(made);
        return ok;
    }
    ok = check_string_leaf(node, &s, made);
    Py_XDECREF(made);
    return ok;
}

/* found[i] = the index of the value of node's field i in the object at `index`, or -1,
 * in one merge of the members (sorted: canonical) with the fields in node->order. A key
 * with escapes is out of byte order, but then no field can match it (node->merge says
 * no field name has one), so it is skipped. */
static void match_members(const Node *node, const ScannedObject *doc, Py_ssize_t index, Py_ssize_t *found)
{
    const Token *tokens = doc->tokens;
    Py_ssize_t member = index + 1;
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < node->nfields; i++) {
        found[i] = -1;
    }
    for (Py_ssize_t m = 0; m < tokens[index].count && j < node->norder; m++) {
        const Token *t = &tokens[member];
        if (!(t->key_flags & S_ESCAPED)) {
            const unsigned char *key = doc->p + t->key_start;
            Py_ssize_t length = t->key_end - t->key_start;
            int order = 1;
            while (j < node->norder) {
                const Field *field = &node->fields[node->order[j].field];
                order = compare_names((const unsigned char *)field->name, field->name_len, key, length);
                if (order >= 0) {
                    break;
                }
                j++;
            }
            if (order == 0) {
                /* Every field of this name takes the value (a spec may list one twice). */
                Py_ssize_t same;
                do {
                    same = node->order[j].same_as_next;
                    found[node->order[j++].field] = member;
                } while (same);
            }
        }
        member = t->next;
    }
}

static int check_scanned_object(const Node *node, const ScannedObject *doc, Py_ssize_t index)
{
    Py_ssize_t found[MAX_MERGE_FIELDS];
    if (doc->tokens[index].type != T_OBJECT) {
        return 0;
    }
    if (node->merge) {
        match_members(node, doc, index, found);
    }
    for (Py_ssize_t i = 0; i < node->nfields; i++) {
        const Field *field = &node->fields[i];
        Py_ssize_t item;
        int ok;
        if (node->merge) {
            item = found[i];
        } else {
            item = field->name_len < 0 ? -1 : find_member(doc, index, field->name, field->name_len);
        }
        if (item < 0 || doc->tokens[item].type == T_NULL) {
            if (field->required) {
                return 0;
            }
            continue;
        }
        ok = check_scanned(field->node, doc, item);
        if (ok != 1) {
            return ok;
        }
    }
    if (node->obj != NULL) {
        return call_predicate_scanned(node->obj, doc, index);
    }
    return 1;
}

static int check_scanned_array(const Node *node, const ScannedObject *doc, Py_ssize_t index)
{
    const Token *token = &doc->tokens[index];
    Py_ssize_t item = index + 1;
    if (token->type != T_ARRAY || token->count < node->lo) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < token->count; i++) {
        int ok = check_scanned(node->item, doc, item);
        if (ok != 1) {
            return ok;
        }
        item = doc->tokens[item].next;
    }
    return 1;
}

static int check_scanned(const Node *node, const ScannedObject *doc, Py_ssize_t index)
{
    switch (node->kind) {
    case N_LEAF:
        return check_scanned_leaf(node, doc, index);
    case N_OBJECT:
        return check_scanned_object(node, doc, index);
    case N_ARRAY:
        return check_scanned_array(node, doc, index);
    default: /* N_TEXT_OR_OBJECT */
        if (doc->tokens[index].type == T_OBJECT) {
            return check_scanned_object(node->item, doc, index);
        }
        {
            PyObject *made;
            Str s;
            int ok = view_scanned_str(doc, index, &s, &made);
            if (ok == 1) {
                ok = is_text(&s);
            }
            Py_XDECREF(made);
            return ok;
        }
    }
}

/* --- compiling a spec --------------------------------------------------------- */

static void free_node(Node *node)
{
    if (node == NULL) {
        return;
    }
    if (node->fields != NULL) {
        for (Py_ssize_t i = 0; i < node->nfields; i++) {
            free_node(node->fields[i].node);
            PyMem_Free(node->fields[i].name);
        }
        PyMem_Free(node->fields);
    }
    free_node(node->item);
    PyMem_Free(node->order);
    PyMem_Free(node->countries);
    PyMem_Free(node->names);
    PyMem_Free(node);
}

static int spec_error(const char *message, PyObject *spec)
{
    PyErr_Format(PyExc_ValueError, "_docschema: %s: %R", message, spec);
    return -1;
}

/* An (a, b) tuple of ints into *lo, *hi. */
static int compile_pair(PyObject *param, long long *lo, long long *hi)
{
    if (!PyTuple_Check(param) || PyTuple_GET_SIZE(param) != 2) {
        return spec_error("expected a (low, high) pair", param);
    }
    *lo = PyLong_AsLongLong(PyTuple_GET_ITEM(param, 0));
    if (*lo == -1 && PyErr_Occurred()) {
        return -1;
    }
    *hi = PyLong_AsLongLong(PyTuple_GET_ITEM(param, 1));
    if (*hi == -1 && PyErr_Occurred()) {
        return -1;
    }
    return 0;
}

/* The two-letter upper-case members of `countries` as a 26 x 26 table: the only
 * members a locode's letters can equal. */
static int compile_countries(Node *node, PyObject *countries)
{
    PyObject *iterator, *code;
    if (!PyAnySet_Check(countries)) {
        return spec_error("expected a set of country codes", countries);
    }
    node->countries = PyMem_Calloc(26 * 26, 1);
    if (node->countries == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    iterator = PyObject_GetIter(countries);
    if (iterator == NULL) {
        return -1;
    }
    while ((code = PyIter_Next(iterator)) != NULL) {
        if (PyUnicode_CheckExact(code) && PyUnicode_GET_LENGTH(code) == 2) {
            Py_UCS4 c0 = PyUnicode_READ_CHAR(code, 0), c1 = PyUnicode_READ_CHAR(code, 1);
            if (is_upper(c0) && is_upper(c1)) {
                node->countries[(c0 - 'A') * 26 + (c1 - 'A')] = 1;
            }
        }
        Py_DECREF(code);
    }
    Py_DECREF(iterator);
    return PyErr_Occurred() ? -1 : 0;
}

static int compare_name_entries(const void *a, const void *b)
{
    const Name *x = a, *y = b;
    return compare_names((const unsigned char *)x->text, x->length, (const unsigned char *)y->text, y->length);
}

/* node->names for an in_set leaf whose set is a frozenset of str (it cannot change
 * under the table); any other set leaves it NULL, and each lookup makes a str. */
static int compile_names(Node *node, PyObject *set)
{
    Py_ssize_t n = 0, size;
    PyObject *iterator, *member;
    if (!PyFrozenSet_CheckExact(set)) {
        return 0;
    }
    size = PySet_GET_SIZE(set);
    node->names = PyMem_Calloc((size_t)size + 1, sizeof(Name));
    if (node->names == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    iterator = PyObject_GetIter(set);
    if (iterator == NULL) {
        return -1;
    }
    /* A frozenset does not change: the iterator gives exactly `size` members. */
    while ((member = PyIter_Next(iterator)) != NULL) {
        const char *text = NULL;
        Py_ssize_t length = 0;
        if (PyUnicode_CheckExact(member) && n < size) {
            text = PyUnicode_AsUTF8AndSize(member, &length);
        }
        Py_DECREF(member); /* the set holds it, and the str holds its UTF-8 */
        if (text == NULL) {
            if (PyErr_Occurred()) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
                    break;
                }
                PyErr_Clear(); /* a lone surrogate: no document string equals it */
                continue;
            }
            /* Not a str: only the set itself can answer for it. */
            PyMem_Free(node->names);
            node->names = NULL;
            break;
        }
        node->names[n].text = text;
        node->names[n].length = length;
        n++;
    }
    Py_DECREF(iterator);
    if (PyErr_Occurred()) {
        return -1;
    }
    node->nnames = n;
    if (node->names != NULL) {
        qsort(node->names, (size_t)n, sizeof(Name), compare_name_entries);
    }
    return 0;
}

static int compile_leaf(Node *node, PyObject *spec)
{
    PyObject *name, *param;
    size_t i;
    if (PyTuple_GET_SIZE(spec) != 3 || !PyUnicode_Check(PyTuple_GET_ITEM(spec, 1))) {
        return spec_error("expected (\"leaf\", kind, param)", spec);
    }
    name = PyTuple_GET_ITEM(spec, 1);
    param = PyTuple_GET_ITEM(spec, 2);
    node->leaf = -1;
    for (i = 0; i < sizeof(LEAF_NAMES) / sizeof(LEAF_NAMES[0]); i++) {
        if (PyUnicode_CompareWithASCIIString(name, LEAF_NAMES[i].name) == 0) {
            node->leaf = LEAF_NAMES[i].leaf;
        }
    }
    switch (node->leaf) {
    case L_INT_RANGE:
    case L_ASCII_GRAPHIC:
    case L_DIGITS:
        return compile_pair(param, &node->lo, &node->hi);
    case L_IN_SET:
        if (!PyAnySet_Check(param)) {
            return spec_error("expected a set", param);
        }
        node->obj = param;
        return compile_names(node, param);
    case L_LOCODE:
        return compile_countries(node, param);
    case L_PYTHON:
        if (!PyCallable_Check(param)) {
            return spec_error("expected a callable", param);
        }
        node->obj = param;
        return 0;
    case -1:
        return spec_error("unknown leaf kind", name);
    default:
        return 0;
    }
}

/* The bytes JCS writes between the quotes of the str `key`, into a new PyMem buffer
 * *out of *length bytes: 1; or 0 when no canonical document can hold the key (a lone
 * surrogate has no UTF-8); or -1 with an exception set. The escapes are those
 * read_string accepts, one way for each character. */
static int jcs_key(PyObject *key, char **out, Py_ssize_t *length)
{
    static const char hex[] = "0123456789abcdef";
    Py_ssize_t n, k = 0;
    const char *utf8 = PyUnicode_AsUTF8AndSize(key, &n);
    char *name;
    if (utf8 == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            return -1;
        }
        PyErr_Clear();
        return 0;
    }
    name = PyMem_Malloc((size_t)n * 6 + 1); /* \u00xx: six bytes for one at most */
    if (name == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)utf8[i];
        if (c == '"' || c == '\\') {
            name[k++] = '\\';
            name[k++] = (char)c;
        } else if (c < 0x20) {
            name[k++] = '\\';
            switch (c) {
            case 0x08: name[k++] = 'b'; break;
            case 0x09: name[k++] = 't'; break;
            case 0x0A: name[k++] = 'n'; break;
            case 0x0C: name[k++] = 'f'; break;
            case 0x0D: name[k++] = 'r'; break;
            default:
                name[k++] = 'u';
                name[k++] = '0';
                name[k++] = '0';
                name[k++] = hex[c >> 4];
                name[k++] = hex[c & 0x0F];
            }
        } else {
            name[k++] = (char)c;
        }
    }
    *out = name;
    *length = k;
    return 1;
}

/* node->order and node->merge, for matching a scanned object's members (match_members). */
static int compile_order(Node *node)
{
    node->merge = node->nfields <= MAX_MERGE_FIELDS;
    node->order = PyMem_Calloc((size_t)node->nfields + 1, sizeof(Rank));
    if (node->order == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < node->nfields; i++) {
        const Field *field = &node->fields[i];
        Py_ssize_t j;
        if (field->name_len < 0) {
            continue; /* matches no member */
        }
        if (memchr(field->name, '\\', (size_t)field->name_len) != NULL) {
            node->merge = 0; /* a name with an escape is out of byte order */
        }
        /* Insertion sort: a spec's objects have a few fields each. */
        for (j = node->norder; j > 0; j--) {
            const Field *before = &node->fields[node->order[j - 1].field];
            if (compare_names((const unsigned char *)before->name, before->name_len,
                              (const unsigned char *)field->name, field->name_len) <= 0) {
                break;
            }
            node->order[j] = node->order[j - 1];
        }
        node->order[j].field = i;
        node->norder++;
    }
    for (Py_ssize_t j = 0; j + 1 < node->norder; j++) {
        const Field *a = &node->fields[node->order[j].field], *b = &node->fields[node->order[j + 1].field];
        node->order[j].same_as_next = compare_names((const unsigned char *)a->name, a->name_len,
                                                    (const unsigned char *)b->name, b->name_len) == 0;
    }
    return 0;
}

static Node *compile(PyObject *spec, int depth);

static int compile_object(Node *node, PyObject *spec, int depth)
{
    PyObject *fields, *rule;
    if (PyTuple_GET_SIZE(spec) != 3 || !PyTuple_Check(PyTuple_GET_ITEM(spec, 1))) {
        return spec_error("expected (\"object\", fields, rule)", spec);
    }
    fields = PyTuple_GET_ITEM(spec, 1);
    rule = PyTuple_GET_ITEM(spec, 2);
    if (rule != Py_None) {
        if (!PyCallable_Check(rule)) {
            return spec_error("expected a callable rule or None", rule);
        }
        node->obj = rule;
    }
    node->fields = PyMem_Calloc((size_t)PyTuple_GET_SIZE(fields) + 1, sizeof(Field));
    if (node->fields == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(fields); i++) {
        PyObject *field = PyTuple_GET_ITEM(fields, i);
        int required;
        if (!PyTuple_Check(field) || PyTuple_GET_SIZE(field) != 3 ||
            !PyUnicode_CheckExact(PyTuple_GET_ITEM(field, 0))) {
            return spec_error("expected (key, required, spec)", field);
        }
        required = PyObject_IsTrue(PyTuple_GET_ITEM(field, 1));
        if (required < 0) {
            return -1;
        }
        node->fields[i].key = PyTuple_GET_ITEM(field, 0);
        node->fields[i].required = required;
        node->fields[i].name_len = -1;
        node->nfields = i + 1; /* so that free_node frees what was compiled */
        if (jcs_key(node->fields[i].key, &node->fields[i].name, &node->fields[i].name_len) < 0) {
            return -1;
        }
        node->fields[i].node = compile(PyTuple_GET_ITEM(field, 2), depth + 1);
        if (node->fields[i].node == NULL) {
            return -1;
        }
    }
    return compile_order(node);
}

static Node *compile(PyObject *spec, int depth)
{
    Node *node;
    PyObject *kind;
    int status;
    if (depth > MAX_DEPTH) {
        spec_error("spec nested too deeply", spec);
        return NULL;
    }
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 2 || !PyUnicode_Check(PyTuple_GET_ITEM(spec, 0))) {
        spec_error("expected a (kind, ...) tuple", spec);
        return NULL;
    }
    node = PyMem_Calloc(1, sizeof(Node));
    if (node == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    kind = PyTuple_GET_ITEM(spec, 0);
    if (PyUnicode_CompareWithASCIIString(kind, "leaf") == 0) {
        node->kind = N_LEAF;
        status = compile_leaf(node, spec);
    } else if (PyUnicode_CompareWithASCIIString(kind, "object") == 0) {
        node->kind = N_OBJECT;
        status = compile_object(node, spec, depth);
    } else if (PyUnicode_CompareWithASCIIString(kind, "array") == 0) {
        node->kind = N_ARRAY;
        if (PyTuple_GET_SIZE(spec) != 3) {
            status = spec_error("expected (\"array\", min_items, spec)", spec);
        } else {
            node->lo = PyLong_AsLongLong(PyTuple_GET_ITEM(spec, 1));
            status = node->lo == -1 && PyErr_Occurred() ? -1 : 0;
            if (status == 0) {
                node->item = compile(PyTuple_GET_ITEM(spec, 2), depth + 1);
                status = node->item == NULL ? -1 : 0;
            }
        }
    } else if (PyUnicode_CompareWithASCIIString(kind, "text_or_object") == 0) {
        node->kind = N_TEXT_OR_OBJECT;
        if (PyTuple_GET_SIZE(spec) != 2) {
            status = spec_error("expected (\"text_or_object\", object_spec)", spec);
        } else {
            node->item = compile(PyTuple_GET_ITEM(spec, 1), depth + 1);
            status = node->item == NULL ? -1 : 0;
            if (status == 0 && node->item->kind != N_OBJECT) {
                status = spec_error("expected an object spec", PyTuple_GET_ITEM(spec, 1));
            }
        }
    } else {
        status = spec_error("unknown node kind", kind);
    }
    if (status < 0) {
        free_node(node);
        return NULL;
    }
    return node;
}

/* --- the Schema type ------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *spec; /* owns every key, set and callable the nodes borrow */
    Node *root;
} SchemaObject;

static PyObject *Schema_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"spec", NULL};
    PyObject *spec;
    SchemaObject *self;
    Node *root;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Schema", keywords, &spec)) {
        return NULL;
    }
    root = compile(spec, 0);
    if (root == NULL) {
        return NULL;
    }
    self = (SchemaObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        free_node(root);
        return NULL;
    }
    Py_INCREF(spec);
    self->spec = spec;
    self->root = root;
    return (PyObject *)self;
}

static int Schema_traverse(SchemaObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->spec);
    return 0;
}

static int Schema_clear(SchemaObject *self)
{
    /* The nodes borrow from the spec: they go with it. */
    free_node(self->root);
    self->root = NULL;
    Py_CLEAR(self->spec);
    return 0;
}

static void Schema_dealloc(SchemaObject *self)
{
    PyObject_GC_UnTrack(self);
    Schema_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Schema_is_valid(SchemaObject *self, PyObject *value)
{
    int ok;
    if (self->root == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_docschema: the schema was cleared");
        return NULL;
    }
    ok = check(self->root, value);
    if (ok < 0) {
        return NULL;
    }
    return PyBool_FromLong(ok);
}

static PyTypeObject ScannedType;

static PyObject *Schema_is_valid_scanned(SchemaObject *self, PyObject *scanned)
{
    int ok;
    if (self->root == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_docschema: the schema was cleared");
        return NULL;
    }
    if (!PyObject_TypeCheck(scanned, &ScannedType)) {
        PyErr_Format(PyExc_TypeError, "expected a Scanned, got %.80s", Py_TYPE(scanned)->tp_name);
        return NULL;
    }
    ok = check_scanned(self->root, (ScannedObject *)scanned, 0);
    if (ok < 0) {
        return NULL;
    }
    return PyBool_FromLong(ok);
}

static PyMethodDef Schema_methods[] = {
    {"is_valid", (PyCFunction)Schema_is_valid, METH_O,
     "True exactly when the schema's reference rules accept the JSON value."},
    {"is_valid_scanned", (PyCFunction)Schema_is_valid_scanned, METH_O,
     "is_valid of the value a Scanned spells, read from its bytes."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SchemaType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ledger._docschema.Schema",
    .tp_doc = "Schema(spec): a document schema compiled from its nested-tuple spec.",
    .tp_basicsize = sizeof(SchemaObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = Schema_new,
    .tp_traverse = (traverseproc)Schema_traverse,
    .tp_clear = (inquiry)Schema_clear,
    .tp_dealloc = (destructor)Schema_dealloc,
    .tp_methods = Schema_methods,
};

/* --- the Scanned type ------------------------------------------------------------ */

static void Scanned_dealloc(ScannedObject *self)
{
    PyMem_Free(self->tokens);
    Py_XDECREF(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Scanned_get(ScannedObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *fallback = nargs == 2 ? args[1] : Py_None;
    char *name;
    Py_ssize_t length, item = -1;
    int status;
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "get expected 1 or 2 arguments, got %zd", nargs);
        return NULL;
    }
    if (!PyUnicode_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "expected a str key, got %.80s", Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    if (self->tokens[0].type != T_OBJECT) {
        return Py_NewRef(fallback);
    }
    status = jcs_key(args[0], &name, &length);
    if (status < 0) {
        return NULL;
    }
    if (status == 1) {
        item = find_member(self, 0, name, length);
        PyMem_Free(name);
    }
    if (item < 0) {
        return Py_NewRef(fallback);
    }
    return materialize(self, item, 0);
}

static PyObject *Scanned_value(ScannedObject *self, PyObject *Py_UNUSED(ignored))
{
    return materialize(self, 0, 0);
}

static PyObject *Scanned_is_object(ScannedObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->tokens[0].type == T_OBJECT);
}

static PyMethodDef Scanned_methods[] = {
    {"get", (PyCFunction)(void (*)(void))Scanned_get, METH_FASTCALL,
     "get(key, default=None): the top-level member as orjson.loads would give it, or default."},
    {"value", (PyCFunction)Scanned_value, METH_NOARGS, "The whole document as orjson.loads would give it."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Scanned_getset[] = {
    {"is_object", (getter)Scanned_is_object, NULL, "Whether the document is a JSON object.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ScannedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ledger._docschema.Scanned",
    .tp_doc = "A document shown canonical by scan_canonical, as tokens over its bytes.",
    .tp_basicsize = sizeof(ScannedObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)Scanned_dealloc,
    .tp_methods = Scanned_methods,
    .tp_getset = Scanned_getset,
};

static PyObject *scan_canonical(PyObject *module, PyObject *data)
{
    Py_ssize_t n;
    Tokens sink = {NULL, 0, 0};
    ScannedObject *scanned;
    (void)module;
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "expected bytes, got %.80s", Py_TYPE(data)->tp_name);
        return NULL;
    }
    n = PyBytes_GET_SIZE(data);
    /* Room for a typical document's tokens (about one per 8 bytes) in one allocation. */
    sink.cap = n / 6 + 16 < MAX_TOKENS ? n / 6 + 16 : MAX_TOKENS;
    sink.tokens = PyMem_Malloc((size_t)sink.cap * sizeof(Token));
    if (sink.tokens == NULL) {
        return PyErr_NoMemory();
    }
    if (!is_canonical((const unsigned char *)PyBytes_AS_STRING(data), n, &sink)) {
        PyMem_Free(sink.tokens);
        Py_RETURN_NONE;
    }
    scanned = PyObject_New(ScannedObject, &ScannedType);
    if (scanned == NULL) {
        PyMem_Free(sink.tokens);
        return NULL;
    }
    scanned->data = Py_NewRef(data);
    scanned->p = (const unsigned char *)PyBytes_AS_STRING(data);
    scanned->tokens = sink.tokens;
    scanned->ntokens = sink.n;
    return (PyObject *)scanned;
}

static PyMethodDef module_methods[] = {
    {"scan_canonical", scan_canonical, METH_O,
     "scan_canonical(data): a Scanned if the bytes are shown canonical JSON, else None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "ledger._docschema",
    .m_size = -1,
    .m_methods = module_methods,
};

static int add_type(PyObject *m, const char *name, PyTypeObject *type)
{
    Py_INCREF(type);
    if (PyModule_AddObject(m, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__docschema(void)
{
    PyObject *m;
    fill_plain();
    if (PyType_Ready(&SchemaType) < 0 || PyType_Ready(&ScannedType) < 0) {
        return NULL;
    }
    m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (add_type(m, "Schema", &SchemaType) < 0 || add_type(m, "Scanned", &ScannedType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
