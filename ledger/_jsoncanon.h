/*
 * The canonical JSON scanner, written once for the two helpers that read document
 * bytes: ledger/_jsonscan.c (is_canonical_document) and ledger/_docschema.c
 * (scan_canonical, which also validates the document from the bytes).
 *
 * is_canonical(p, n, sink) answers SHOWN only when p[0..n) is exactly the RFC 8785
 * (JCS) form of the JSON value it spells, and that value holds no float and no integer
 * of magnitude beyond 2^53 - 1: no whitespace, object keys in strictly increasing
 * UTF-16 order (so none twice), strings escaped exactly as JCS escapes them, integers
 * in their shortest form, valid UTF-8, nothing after the value. NOT_SHOWN means "not
 * shown canonical here": the caller then runs the exact Python check, which names the
 * fault or, for what this scanner leaves to it (a key holding a character beyond
 * U+FFFF, nesting beyond JSON_MAX_DEPTH), accepts. The specification is the Python
 * path (`jcs(parse(data)) == data` in ledger/encoding.py); property tests hold the
 * scanner to it.
 *
 * Given a sink, the scanner also records every value it reads as a Token, in document
 * order, so that a caller can walk the document without parsing it again: each object
 * member as its value's token, which also holds the span of its key, and each
 * container with the number of its members or items and the index just past its last
 * descendant (siblings are then one step apart, whatever they hold). The sink is bounded by
 * MAX_TOKENS: a document with more values is NOT_SHOWN, as is one the sink cannot
 * grow for (no exception is set: the caller takes the exact path, which is correct
 * for every document, shown or not).
 *
 * Each includer calls fill_plain() once, when its module is initialised.
 */
#ifndef ZONELEDGER_JSONCANON_H
#define ZONELEDGER_JSONCANON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define JSON_MAX_DEPTH 512
#define NOT_SHOWN 0
#define SHOWN 1

/* A 512 KiB document (ledger.transition.MAX_DOCUMENT_BYTES) of realistic trade data
 * holds well under this many values; the bound only caps what hostile input costs. */
#define MAX_TOKENS (1 << 17)

/* What read_string found in a string besides plain bytes. */
#define S_ESCAPED 1   /* an escape sequence */
#define S_NON_ASCII 2 /* a character beyond U+007F */
#define S_ASTRAL 4    /* a character beyond U+FFFF */

enum { T_OBJECT, T_ARRAY, T_STRING, T_INTEGER, T_TRUE, T_FALSE, T_NULL };

typedef struct {
    unsigned char type;      /* T_* */
    unsigned char flags;     /* a string: the S_* flags of what it holds; 0: its bytes are its text */
    unsigned char key_flags; /* an object member: the S_* flags of its key */
    Py_ssize_t start;        /* a string: just past its opening quote; any other value: its first byte */
    Py_ssize_t end;          /* a string: its closing quote; any other value: just past its last byte */
    Py_ssize_t key_start;    /* an object member: its key, between the quotes; else -1 */
    Py_ssize_t key_end;
    Py_ssize_t count;        /* an object: its members; an array: its items; else 0 */
    Py_ssize_t next;         /* the index of the token just past this value and all it holds */
} Token;

typedef struct {
    Token *tokens; /* PyMem; the owner frees it */
    Py_ssize_t n;
    Py_ssize_t cap;
} Tokens;

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

/* The high bit of each byte of x that PLAIN does not hold (a quote, a backslash, a
 * control, a byte beyond ASCII), and perhaps of bytes after the first such: the mask is
 * non-zero exactly when x has one, and its lowest set bit is that of the first. (v -
 * 0x01..) & ~v flags the zero bytes of v, (x - 0x20..) | x the bytes below 0x20 or from
 * 0x80; a borrow only runs upwards, from a byte already flagged.) */
static inline uint64_t special_bytes(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
    return (((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | (x - ones * 0x20) | x) & highs;
}

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FIRST_SPECIAL_BYTE(mask) (__builtin_ctzll(mask) / 8) /* the first byte is the lowest */
#endif

/*
 * A string at r->i (the opening quote), written as JCS writes it. On success r->i is
 * past the closing quote, start and end receive the bounds of the text between the
 * quotes, and found the S_* flags of what it holds.
 */
static inline int read_string(Reader *r, Py_ssize_t *start, Py_ssize_t *end, int *found)
{
    const unsigned char *p = r->p;
    Py_ssize_t i = r->i + 1;
    *start = i;
    *found = 0;
    while (i < r->n) {
        unsigned char c;
        /* Eight plain bytes at a time while they last, then one at a time. */
        while (r->n - i >= 8) {
            uint64_t x, mask;
            memcpy(&x, p + i, 8);
            mask = special_bytes(x);
            if (mask != 0) {
#ifdef FIRST_SPECIAL_BYTE
                i += FIRST_SPECIAL_BYTE(mask);
#endif
                break;
            }
            i += 8;
        }
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
            *found |= S_ESCAPED;
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
            *found |= length == 4 ? S_NON_ASCII | S_ASTRAL : S_NON_ASCII;
            i += length;
        }
    }
    return NOT_SHOWN;
}

/* The next character of a string body written as read_string accepts it, for one
 * without a character beyond U+FFFF (a key) or at an escape (any string). */
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
    int key_flags;
    Py_ssize_t token;        /* with a sink: the container's token */
    Py_ssize_t count;        /* with a sink: its members or items so far */
} Frame;

/* Record the value read from start to end (found: read_string's flags) as a new token,
 * a member of the object or an item of the array at the top of the stack, if any: 1;
 * 0 when the sink is full (MAX_TOKENS) or cannot grow, with no exception set. */
static inline int record(Tokens *sink, Frame *stack, int depth, int type, Py_ssize_t start, Py_ssize_t end, int found)
{
    Token *token;
    if (sink->n == sink->cap) {
        Py_ssize_t cap = sink->cap < 64 ? 64 : sink->cap * 2;
        Token *grown;
        if (sink->cap >= MAX_TOKENS) {
            return NOT_SHOWN;
        }
        if (cap > MAX_TOKENS) {
            cap = MAX_TOKENS;
        }
        grown = PyMem_Realloc(sink->tokens, (size_t)cap * sizeof(Token));
        if (grown == NULL) {
            return NOT_SHOWN;
        }
        sink->tokens = grown;
        sink->cap = cap;
    }
    token = &sink->tokens[sink->n++];
    token->type = (unsigned char)type;
    token->flags = (unsigned char)found;
    token->start = start;
    token->end = end;
    token->count = 0;
    token->next = sink->n; /* a container's is set when it closes */
    token->key_start = -1;
    token->key_end = -1;
    token->key_flags = 0;
    if (depth > 0) {
        Frame *top = &stack[depth - 1];
        top->count++;
        if (top->container == '{') {
            token->key_start = top->key_start;
            token->key_end = top->key_end;
            token->key_flags = (unsigned char)top->key_flags;
        }
    }
    return SHOWN;
}

static int is_canonical(const unsigned char *p, Py_ssize_t n, Tokens *sink)
{
    Reader r = {p, n, 0};
    Frame stack[JSON_MAX_DEPTH];
    int depth = 0;
    for (;;) {
        /* A value at r.i. */
        unsigned char c;
        Py_ssize_t first = r.i;
        if (r.i >= n) {
            return NOT_SHOWN;
        }
        c = p[r.i];
        if (c == '{' || c == '[') {
            int type = c == '{' ? T_OBJECT : T_ARRAY;
            if (depth == JSON_MAX_DEPTH) {
                return NOT_SHOWN;
            }
            r.i++;
            if (r.i < n && p[r.i] == (c == '{' ? '}' : ']')) {
                r.i++;
                if (sink != NULL && !record(sink, stack, depth, type, first, r.i, 0)) {
                    return NOT_SHOWN;
                }
            } else {
                if (sink != NULL) {
                    /* Its end, count and next are set when it closes. */
                    if (!record(sink, stack, depth, type, first, first, 0)) {
                        return NOT_SHOWN;
                    }
                    stack[depth].token = sink->n - 1;
                    stack[depth].count = 0;
                }
                stack[depth].container = c;
                stack[depth].key_start = -1;
                stack[depth].key_end = -1;
                stack[depth].key_flags = 0;
                depth++;
                if (c == '{') {
                    goto key;
                }
                continue;
            }
        } else if (c == '"') {
            Py_ssize_t start, end;
            int found;
            if (!read_string(&r, &start, &end, &found)) {
                return NOT_SHOWN;
            }
            if (sink != NULL && !record(sink, stack, depth, T_STRING, start, end, found)) {
                return NOT_SHOWN;
            }
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (!read_integer(&r)) {
                return NOT_SHOWN;
            }
            if (sink != NULL && !record(sink, stack, depth, T_INTEGER, first, r.i, 0)) {
                return NOT_SHOWN;
            }
        } else {
            int type;
            if (c == 't' && read_literal(&r, "true", 4)) {
                type = T_TRUE;
            } else if (c == 'f' && read_literal(&r, "false", 5)) {
                type = T_FALSE;
            } else if (c == 'n' && read_literal(&r, "null", 4)) {
                type = T_NULL;
            } else {
                return NOT_SHOWN;
            }
            if (sink != NULL && !record(sink, stack, depth, type, first, r.i, 0)) {
                return NOT_SHOWN;
            }
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
            if (sink != NULL) {
                Token *container = &sink->tokens[top->token];
                container->end = r.i;
                container->count = top->count;
                container->next = sink->n;
            }
            depth--;
        }
        continue;
    key:
        {
            Frame *top = &stack[depth - 1];
            Py_ssize_t start, end;
            int found;
            if (r.i >= n || p[r.i] != '"' || !read_string(&r, &start, &end, &found) || (found & S_ASTRAL)) {
                return NOT_SHOWN;
            }
            if (top->key_start >= 0) {
                int before;
                if ((found | top->key_flags) & S_ESCAPED) {
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
            /* The member's value, read next, takes the key into its token. */
            top->key_start = start;
            top->key_end = end;
            top->key_flags = found;
            if (r.i >= n || p[r.i] != ':') {
                return NOT_SHOWN;
            }
            r.i++;
        }
    }
}

#endif /* ZONELEDGER_JSONCANON_H */
