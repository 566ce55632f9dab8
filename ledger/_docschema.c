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
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define MAX_DEPTH 64

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
    PyObject *key; /* borrowed from the spec, which the Schema owns */
    int required;
    Node *node;
} Field;

struct Node {
    int kind; /* N_* */
    int leaf; /* L_*, for N_LEAF */
    long long lo, hi; /* int_range bounds; string lengths; an array's min_items (lo) */
    PyObject *obj; /* borrowed: in_set's set, python's callable, an object's rule (or NULL) */
    unsigned char *countries; /* locode: 26 x 26 table of two-letter country codes */
    Py_ssize_t nfields;
    Field *fields; /* object */
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
    switch (node->leaf) {
    case L_STRING:
        return 1;
    case L_TEXT:
        return is_text(&s);
    case L_ASCII_GRAPHIC:
        return is_in_range(&s, node->lo, node->hi, '!', '~');
    case L_DIGITS:
        return is_in_range(&s, node->lo, node->hi, '0', '9');
    case L_IN_SET:
        return PySet_Contains(node->obj, value);
    case L_HS_CODE:
        return is_hs_code(&s);
    case L_LOCODE:
        return is_locode(&s, node->countries);
    case L_DATETIME:
        return is_datetime(&s);
    case L_DATE_OR_DATETIME:
        return is_date(&s) || is_datetime(&s);
    case L_DECIMAL:
        return is_decimal(&s, 1);
    case L_NON_NEGATIVE_DECIMAL:
        return is_decimal(&s, 0);
    default:
        PyErr_SetString(PyExc_SystemError, "_docschema: unknown leaf kind");
        return -1;
    }
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

/* --- compiling a spec --------------------------------------------------------- */

static void free_node(Node *node)
{
    if (node == NULL) {
        return;
    }
    if (node->fields != NULL) {
        for (Py_ssize_t i = 0; i < node->nfields; i++) {
            free_node(node->fields[i].node);
        }
        PyMem_Free(node->fields);
    }
    free_node(node->item);
    PyMem_Free(node->countries);
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
        return 0;
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
        node->fields[i].node = compile(PyTuple_GET_ITEM(field, 2), depth + 1);
        node->nfields = i + 1; /* so that free_node frees what was compiled */
        if (node->fields[i].node == NULL) {
            return -1;
        }
    }
    return 0;
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

static PyMethodDef Schema_methods[] = {
    {"is_valid", (PyCFunction)Schema_is_valid, METH_O,
     "True exactly when the schema's reference rules accept the JSON value."},
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

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "ledger._docschema",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__docschema(void)
{
    PyObject *m;
    if (PyType_Ready(&SchemaType) < 0) {
        return NULL;
    }
    m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&SchemaType);
    if (PyModule_AddObject(m, "Schema", (PyObject *)&SchemaType) < 0) {
        Py_DECREF(&SchemaType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
