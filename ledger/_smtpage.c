/*
 * The state tree's update walk and page check, compiled (see ledger/smt_store.py).
 *
 * The Python walk in ledger/smt_store.py (StateTree.update_reference) and its parse_page
 * are the specification; this file follows them function for function (build, build_page,
 * merge, walk_one, walk, walk_page), and a differential property test
 * (tests/property/test_smt_compiled.py) keeps the two equal: the same root, the same batch
 * entries in the same order, byte for byte, and the same cache effects.
 *
 *   update(ops, young, take_page, value_prefix, page_prefix, cache_depth, old_root,
 *          keys, items) -> new root
 *       ``keys`` is sorted(items). Writes the value and page records into the dict
 *       ``ops`` (WriteBatch.ops), pops every page it rewrites from the dict ``young``
 *       (NodeCache.young) and adds the new page to it below ``cache_depth``; a page that
 *       is not in ``young`` comes from take_page(depth, key, root_hash) -> bytes (the
 *       tree's cache-old-or-store read, which checks the page and raises
 *       StoreCorruptError). The caller writes the root record and ages the cache.
 *   parse_page(raw, root_hash) -> raw or None      (smt_store.parse_page)
 *   sha256(data) -> digest, sha256_portable(data), SHA_EXTENSIONS     (for the tests)
 *
 * Page layout (smt_store's docstring has the whole story). A page holds the nodes of four
 * tree levels below a depth that is a multiple of 4: 15 slots in heap order, slot 0 its
 * root, slot s's children in slots 2s+1 (left) and 2s+2 (right); the children of the
 * bottom row (slots 7..14) are the roots of the pages below. Stored, a page is a 2-byte
 * big-endian mask (bit s set iff slot s holds a node) and then the 65-byte record of each
 * node in slot order: 0x00 || key || value_hash for a leaf, 0x01 || left || right for an
 * internal node; a node's hash is SHA-256 of its record. Here a page is unpacked into a
 * Page: the mask and one fixed record buffer per slot, so that setting a slot is a copy
 * (the Python walk inserts into a list instead; the bytes it joins are the same).
 *
 * Bounds. Depths never exceed 256 (the key length in bits): every descent checks it and a
 * tree that would go deeper is reported as a corrupt store, so the recursion (one C frame
 * per tree level at most) and the per-walk page stack are bounded. Bytes from the cache
 * or the store are checked (mask and length) before any record is read, and a slot is
 * read only if the mask says it holds a node.
 *
 * Hashing: SHA-256 is written out here (no library is promised on the machines that build
 * this), portable C, plus the x86 SHA instructions where the CPU has them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define KEY_SIZE 32
#define HASH_SIZE 32
#define RECORD_SIZE 65 /* tag + two 32-byte fields */
#define PAGE_SLOTS 15
#define PAGE_BOTTOM 7 /* first slot of the bottom row: its children root other pages */
#define MAX_DEPTH 256
#define MAX_PAGES_ON_PATH (MAX_DEPTH / 4 + 2) /* pages at depth 0, 4, ..., 256, and slack */
#define LEAF_TAG 0x00
#define INTERNAL_TAG 0x01

static PyObject *StoreCorruptError; /* ledger.errors.StoreCorruptError */

/* --- SHA-256 (FIPS 180-4) ------------------------------------------------------------ */

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t sha_iv[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static inline uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The portable compression function, over ``blocks`` consecutive 64-byte blocks. */
static void compress_portable(uint32_t state[8], const uint8_t *data, size_t blocks)
{
    for (; blocks; blocks--, data += 64) {
        uint32_t w[64];
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        int i;
        for (i = 0; i < 16; i++) {
            w[i] = load_be32(data + 4 * i);
        }
        for (i = 16; i < 64; i++) {
            uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        for (i = 0; i < 64; i++) {
            uint32_t s1 = ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25);
            uint32_t ch = (e & f) ^ (~e & g);
            uint32_t t1 = h + s1 + ch + sha_k[i] + w[i];
            uint32_t s0 = ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22);
            uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
            uint32_t t2 = s0 + maj;
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
        state[4] += e;
        state[5] += f;
        state[6] += g;
        state[7] += h;
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/*
 * The same function with the x86 SHA extensions, about five times faster per node; used
 * only if the CPU has them (checked once, at import). The instructions keep the state as two
 * vectors, (A, B, E, F) and (C, D, G, H); sha256rnds2 does two rounds, sha256msg1/msg2
 * extend the message schedule four words at a time.
 */
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHA_EXTENSIONS_CODE 1

__attribute__((target("sha,sse4.1,ssse3"))) static void compress_sha_extensions(uint32_t state[8], const uint8_t *data,
                                                                                 size_t blocks)
{
    /* Loads big-endian words: reverses the bytes of each 32-bit lane. */
    const __m128i byteswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1); /* C D A B */
    __m128i state1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B); /* E F G H */
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8); /* A B E F */
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);       /* C D G H */

    for (; blocks; blocks--, data += 64) {
        __m128i abef = state0, cdgh = state1;
        __m128i msg[4]; /* w[4i .. 4i + 3] in msg[i % 4] */
        int i;
        for (i = 0; i < 4; i++) {
            msg[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * i)), byteswap);
        }
        for (i = 0; i < 16; i++) {
            __m128i wk = _mm_add_epi32(msg[i & 3], _mm_loadu_si128((const __m128i *)&sha_k[4 * i]));
            state1 = _mm_sha256rnds2_epu32(state1, state0, wk);
            state0 = _mm_sha256rnds2_epu32(state0, state1, _mm_shuffle_epi32(wk, 0x0E));
            if (i < 12) {
                /* w[t] = s1(w[t-2]) + w[t-7] + s0(w[t-15]) + w[t-16] for t = 4i + 16 .. 4i + 19 */
                __m128i next = _mm_sha256msg1_epu32(msg[i & 3], msg[(i + 1) & 3]);
                next = _mm_add_epi32(next, _mm_alignr_epi8(msg[(i + 3) & 3], msg[(i + 2) & 3], 4));
                msg[i & 3] = _mm_sha256msg2_epu32(next, msg[(i + 3) & 3]);
            }
        }
        state0 = _mm_add_epi32(state0, abef);
        state1 = _mm_add_epi32(state1, cdgh);
    }

    tmp = _mm_shuffle_epi32(state0, 0x1B);       /* F E B A */
    state1 = _mm_shuffle_epi32(state1, 0xB1);    /* D C H G */
    state0 = _mm_blend_epi16(tmp, state1, 0xF0); /* D C B A */
    state1 = _mm_alignr_epi8(state1, tmp, 8);    /* H G F E */
    _mm_storeu_si128((__m128i *)&state[0], state0);
    _mm_storeu_si128((__m128i *)&state[4], state1);
}

static int cpu_has_sha_extensions(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3)) {
        return 0;
    }
    if (__get_cpuid_max(0, NULL) < 7) {
        return 0;
    }
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1; /* CPUID.(EAX=7,ECX=0):EBX.SHA[bit 29] */
}
#endif

/* The compression function the module uses: set once at import. */
static void (*compress)(uint32_t state[8], const uint8_t *data, size_t blocks) = compress_portable;

static void sha256_with(void (*compress_fn)(uint32_t *, const uint8_t *, size_t), const uint8_t *data, size_t len,
                        uint8_t out[HASH_SIZE])
{
    uint32_t state[8];
    uint8_t tail[128];
    size_t rest = len % 64;
    size_t tail_len = rest + 9 <= 64 ? 64 : 128; /* room for 0x80 and the 8-byte bit length */
    uint64_t bits = (uint64_t)len * 8;
    size_t i;
    memcpy(state, sha_iv, sizeof state);
    compress_fn(state, data, len / 64);
    memset(tail, 0, sizeof tail);
    memcpy(tail, data + (len - rest), rest);
    tail[rest] = 0x80;
    for (i = 0; i < 8; i++) {
        tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
    }
    compress_fn(state, tail, tail_len / 64);
    for (i = 0; i < 8; i++) {
        store_be32(out + 4 * i, state[i]);
    }
}

static void sha256(const uint8_t *data, size_t len, uint8_t out[HASH_SIZE])
{
    sha256_with(compress, data, len, out);
}

/* A node's hash. A record is 65 bytes: two blocks, the second its last byte and the
 * padding, which is the same for every record. */
static void hash_record(const uint8_t record[RECORD_SIZE], uint8_t out[HASH_SIZE])
{
    uint32_t state[8];
    uint8_t blocks[128] = {0};
    int i;
    memcpy(blocks, record, RECORD_SIZE);
    blocks[RECORD_SIZE] = 0x80;
    blocks[126] = (RECORD_SIZE * 8) >> 8; /* the length: 520 bits */
    blocks[127] = (RECORD_SIZE * 8) & 0xff;
    memcpy(state, sha_iv, sizeof state);
    compress(state, blocks, 2);
    for (i = 0; i < 8; i++) {
        store_be32(out + 4 * i, state[i]);
    }
}

/* --- keys and slots ----------------------------------------------------------------- */

static const uint8_t empty_hash[HASH_SIZE] = {0};

/* The tree level of each slot within its page. */
static const int slot_level[PAGE_SLOTS] = {0, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};

static inline int is_empty(const uint8_t hash[HASH_SIZE])
{
    return memcmp(hash, empty_hash, HASH_SIZE) == 0;
}

/* The key's four bits at a page's levels (the page rooted at ``depth``, a multiple of 4);
 * 0 below the last level, as the Python walk's ``nibble``. */
static inline int nibble_at(const uint8_t *key, int depth)
{
    if (depth >= MAX_DEPTH) {
        return 0;
    }
    return (depth & 4) ? key[depth >> 3] & 15 : key[depth >> 3] >> 4;
}

/* The child of ``slot`` (above the bottom row) on the path whose page bits are ``nibble``. */
static inline int next_slot(int nibble, int slot)
{
    return 2 * slot + 1 + ((nibble >> (3 - slot_level[slot])) & 1);
}

/* How many leading bits two different keys share: the depth where their paths part. */
static int shared_bits(const uint8_t *a, const uint8_t *b)
{
    int i;
    for (i = 0; i < KEY_SIZE; i++) {
        uint8_t x = a[i] ^ b[i];
        if (x) {
            int n = 8 * i;
            while (!(x & 0x80)) {
                x <<= 1;
                n++;
            }
            return n;
        }
    }
    return MAX_DEPTH;
}

typedef struct {
    uint8_t key[KEY_SIZE];
    uint8_t value_hash[HASH_SIZE];
} Entry;

/* The first of list[lo:hi] (sorted) that is >= ``target``: bisect_left. */
static Py_ssize_t lower_bound(const Entry *const *list, Py_ssize_t lo, Py_ssize_t hi, const uint8_t *target)
{
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (memcmp(list[mid]->key, target, KEY_SIZE) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Where list[lo:hi] goes right at ``depth`` (< 256): the Python walk's
 * bisect_left(paths, ((paths[lo] >> shift) | 1) << shift), shift = 255 - depth, i.e. the
 * first key not below list[lo]'s first ``depth`` bits followed by a 1 and zeros. */
static Py_ssize_t split_point(const Entry *const *list, Py_ssize_t lo, Py_ssize_t hi, int depth)
{
    uint8_t target[KEY_SIZE];
    int byte = depth >> 3;
    uint8_t bit = (uint8_t)(0x80 >> (depth & 7));
    memcpy(target, list[lo]->key, KEY_SIZE);
    target[byte] = (uint8_t)((target[byte] | bit) & ~(bit - 1));
    memset(target + byte + 1, 0, (size_t)(KEY_SIZE - byte - 1));
    return lower_bound(list, lo, hi, target);
}

/* --- pages -------------------------------------------------------------------------- */

typedef struct Page {
    uint16_t mask;
    uint8_t rec[PAGE_SLOTS][RECORD_SIZE];
    struct Page *next_free;
    struct Page *next_all;
} Page;

/* One update's state: where it writes, what it reads, and its pages (freed at the end, so
 * that an error anywhere in the walk leaks none). */
typedef struct {
    PyObject *ops;       /* dict: WriteBatch.ops */
    PyObject *young;     /* dict: NodeCache.young */
    PyObject *take_page; /* callable(depth, key, root_hash) -> page bytes */
    const char *page_prefix;
    Py_ssize_t page_prefix_len;
    int cache_depth;
    const Entry *const *keys; /* the batch, sorted */
    Page *all;
    Page *free;
} Walk;

static Page *page_new(Walk *w)
{
    Page *page = w->free;
    if (page != NULL) {
        w->free = page->next_free;
    } else {
        page = PyMem_Malloc(sizeof(Page));
        if (page == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        page->next_all = w->all;
        w->all = page;
    }
    page->mask = 0;
    return page;
}

static void page_release(Walk *w, Page *page)
{
    page->next_free = w->free;
    w->free = page;
}

static void pages_free_all(Walk *w)
{
    while (w->all != NULL) {
        Page *next = w->all->next_all;
        PyMem_Free(w->all);
        w->all = next;
    }
    w->free = NULL;
}

static int corrupt(const char *what, int depth)
{
    PyErr_Format(StoreCorruptError, "state tree: %s at depth %d", what, depth);
    return -1;
}

/* Unpack page bytes whose mask and length agree (the walk's cache and store reads have
 * checked the records against the hashes; this check only keeps the copy in bounds). */
static int page_load(Page *page, PyObject *data, int depth)
{
    const uint8_t *raw;
    Py_ssize_t len;
    unsigned mask;
    int slot;
    const uint8_t *at;
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "expected a state tree page as bytes, got %.80s", Py_TYPE(data)->tp_name);
        return -1;
    }
    raw = (const uint8_t *)PyBytes_AS_STRING(data);
    len = PyBytes_GET_SIZE(data);
    if (len < 2) {
        return corrupt("page shorter than its mask", depth);
    }
    mask = (unsigned)raw[0] << 8 | raw[1];
    if (mask >> PAGE_SLOTS || len != 2 + RECORD_SIZE * (Py_ssize_t)__builtin_popcount(mask)) {
        return corrupt("page whose length does not match its mask", depth);
    }
    page->mask = (uint16_t)mask;
    at = raw + 2;
    for (slot = 0; slot < PAGE_SLOTS; slot++) {
        if (mask >> slot & 1) {
            memcpy(page->rec[slot], at, RECORD_SIZE);
            at += RECORD_SIZE;
        }
    }
    return 0;
}

static PyObject *page_dump(const Page *page)
{
    int count = __builtin_popcount(page->mask);
    PyObject *data = PyBytes_FromStringAndSize(NULL, 2 + RECORD_SIZE * count);
    uint8_t *out;
    int slot;
    if (data == NULL) {
        return NULL;
    }
    out = (uint8_t *)PyBytes_AS_STRING(data);
    out[0] = (uint8_t)(page->mask >> 8);
    out[1] = (uint8_t)page->mask;
    out += 2;
    for (slot = 0; slot < PAGE_SLOTS; slot++) {
        if (page->mask >> slot & 1) {
            memcpy(out, page->rec[slot], RECORD_SIZE);
            out += RECORD_SIZE;
        }
    }
    return data;
}

static inline void put_slot(Page *page, int slot, const uint8_t record[RECORD_SIZE])
{
    memcpy(page->rec[slot], record, RECORD_SIZE);
    page->mask = (uint16_t)(page->mask | 1u << slot);
}

static inline void make_leaf(uint8_t record[RECORD_SIZE], const Entry *entry)
{
    record[0] = LEAF_TAG;
    memcpy(record + 1, entry->key, KEY_SIZE);
    memcpy(record + 1 + KEY_SIZE, entry->value_hash, HASH_SIZE);
}

/* prefix + b"p" + the first depth / 4 hex digits of the key. */
static PyObject *page_name(Walk *w, const uint8_t *key, int depth)
{
    static const char hex[] = "0123456789abcdef";
    int digits = depth >> 2;
    PyObject *name;
    char *out;
    int i;
    if (digits > 2 * KEY_SIZE) {
        digits = 2 * KEY_SIZE; /* as hexlify(key)[:digits] */
    }
    name = PyBytes_FromStringAndSize(NULL, w->page_prefix_len + digits);
    if (name == NULL) {
        return NULL;
    }
    out = PyBytes_AS_STRING(name);
    memcpy(out, w->page_prefix, (size_t)w->page_prefix_len);
    out += w->page_prefix_len;
    for (i = 0; i < digits; i++) {
        uint8_t byte = key[i >> 1];
        out[i] = hex[(i & 1) ? byte & 15 : byte >> 4];
    }
    return name;
}

/* The Python walk's put_page: the page into the batch, and into the cache's young
 * generation if it is rooted above cache_depth. */
static int put_page(Walk *w, const uint8_t *key, int depth, const Page *page, const uint8_t root_hash[HASH_SIZE])
{
    PyObject *name, *data, *hash;
    int rc;
    name = page_name(w, key, depth);
    if (name == NULL) {
        return -1;
    }
    data = page_dump(page);
    if (data == NULL) {
        Py_DECREF(name);
        return -1;
    }
    rc = PyDict_SetItem(w->ops, name, data);
    Py_DECREF(name);
    if (rc == 0 && depth < w->cache_depth) {
        hash = PyBytes_FromStringAndSize((const char *)root_hash, HASH_SIZE);
        rc = hash == NULL ? -1 : PyDict_SetItem(w->young, hash, data);
        Py_XDECREF(hash);
    }
    Py_DECREF(data);
    return rc;
}

/* The page with root ``root_hash`` at ``depth`` on ``key``'s path, taken out of the young
 * generation or else through take_page (old generation or store; it raises
 * StoreCorruptError for a page that does not match). */
static int take_page(Walk *w, int depth, const uint8_t *key, const uint8_t root_hash[HASH_SIZE], Page *page)
{
    PyObject *hash, *data;
    int rc;
    hash = PyBytes_FromStringAndSize((const char *)root_hash, HASH_SIZE);
    if (hash == NULL) {
        return -1;
    }
    data = PyDict_GetItemWithError(w->young, hash);
    if (data != NULL) {
        Py_INCREF(data);
        if (PyDict_DelItem(w->young, hash) < 0) {
            Py_DECREF(data);
            Py_DECREF(hash);
            return -1;
        }
        if (PyBytes_Check(data) && PyBytes_GET_SIZE(data) == 0) { /* young.pop(hash, b"") or ... */
            Py_CLEAR(data);
        }
    } else if (PyErr_Occurred()) {
        Py_DECREF(hash);
        return -1;
    }
    if (data == NULL) {
        data = PyObject_CallFunction(w->take_page, "iy#O", depth, (const char *)key, (Py_ssize_t)KEY_SIZE, hash);
        if (data == NULL) {
            Py_DECREF(hash);
            return -1;
        }
    }
    Py_DECREF(hash);
    rc = page_load(page, data, depth);
    Py_DECREF(data);
    return rc;
}

/* --- the walk (twins of the nested functions of StateTree.update_reference) ---------- */

static int build_page(Walk *w, int depth, const Entry *const *list, Py_ssize_t lo, Py_ssize_t hi, uint8_t out[HASH_SIZE]);

/* A new subtree for list[lo:hi] at ``slot`` (at ``depth``), which was empty or held a leaf. */
static int build(Walk *w, Page *page, int slot, int depth, const Entry *const *list, Py_ssize_t lo, Py_ssize_t hi,
                 uint8_t out[HASH_SIZE])
{
    uint8_t record[RECORD_SIZE];
    if (hi - lo == 1) {
        make_leaf(record, list[lo]);
    } else {
        Py_ssize_t mid;
        uint8_t *left = record + 1, *right = record + 1 + HASH_SIZE;
        if (depth >= MAX_DEPTH) {
            return corrupt("keys that do not part within 256 levels", depth);
        }
        mid = split_point(list, lo, hi, depth);
        record[0] = INTERNAL_TAG;
        if (mid == lo) {
            memcpy(left, empty_hash, HASH_SIZE);
        } else if ((slot >= PAGE_BOTTOM ? build_page(w, depth + 1, list, lo, mid, left)
                                        : build(w, page, 2 * slot + 1, depth + 1, list, lo, mid, left)) < 0) {
            return -1;
        }
        if (hi == mid) {
            memcpy(right, empty_hash, HASH_SIZE);
        } else if ((slot >= PAGE_BOTTOM ? build_page(w, depth + 1, list, mid, hi, right)
                                        : build(w, page, 2 * slot + 2, depth + 1, list, mid, hi, right)) < 0) {
            return -1;
        }
    }
    put_slot(page, slot, record);
    hash_record(record, out);
    return 0;
}

static int build_page(Walk *w, int depth, const Entry *const *list, Py_ssize_t lo, Py_ssize_t hi, uint8_t out[HASH_SIZE])
{
    Page *page = page_new(w);
    int rc;
    if (page == NULL) {
        return -1;
    }
    rc = build(w, page, 0, depth, list, lo, hi, out);
    if (rc == 0) {
        rc = put_page(w, list[lo]->key, depth, page, out);
    }
    page_release(w, page);
    return rc;
}

/* Several new keys meet a resident leaf: it moves down among them, unless one replaces it. */
static int merge(Walk *w, Page *page, int slot, int depth, const uint8_t record[RECORD_SIZE], Py_ssize_t lo,
                 Py_ssize_t hi, uint8_t out[HASH_SIZE])
{
    Entry resident;
    const Entry **list;
    Py_ssize_t at, i, n;
    int rc;
    memcpy(resident.key, record + 1, KEY_SIZE);
    memcpy(resident.value_hash, record + 1 + KEY_SIZE, HASH_SIZE);
    at = lower_bound(w->keys, lo, hi, resident.key);
    if (at < hi && memcmp(w->keys[at]->key, resident.key, KEY_SIZE) == 0) {
        return build(w, page, slot, depth, w->keys, lo, hi, out);
    }
    n = hi - lo + 1;
    list = PyMem_Malloc((size_t)n * sizeof(*list));
    if (list == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (i = lo; i < at; i++) {
        list[i - lo] = w->keys[i];
    }
    list[at - lo] = &resident;
    for (i = at; i < hi; i++) {
        list[i - lo + 1] = w->keys[i];
    }
    rc = build(w, page, slot, depth, list, 0, n, out);
    PyMem_Free(list);
    return rc;
}

/* An internal node on the path where a new key meets a resident leaf: one-sided, its
 * child hash filled in on the way up, while the paths still agree (`above_split`); at
 * the split, both children the resident's hash for now (the new leaf replaces one). */
static void set_path_record(uint8_t record[RECORD_SIZE], int above_split, const uint8_t node_hash[HASH_SIZE])
{
    record[0] = INTERNAL_TAG;
    if (above_split) {
        memset(record + 1, 0, 2 * HASH_SIZE);
    } else {
        memcpy(record + 1, node_hash, HASH_SIZE);
        memcpy(record + 1 + HASH_SIZE, node_hash, HASH_SIZE);
    }
}

/* A page left on the way down, to come back to: where the path went on from it. */
typedef struct {
    Page *page;
    int page_depth;
    int entry; /* the slot the walk entered the page at */
    int slot;  /* its bottom-row slot the path left through */
    int bit;   /* the side it left through */
} Above;

/* One key (keys[index]) from ``slot`` (hash ``entry_hash``) of ``page``, the caller's page
 * at ``page_depth``: a loop down, a loop up. Writes the pages below; the slot's new hash
 * into ``out``. The Python walk pushes each record it passes; those records are the
 * parents' slots, unchanged until the way up, so they are read back from the pages. */
static int walk_one(Walk *w, int page_depth, int slot, Page *page, const uint8_t entry_hash[HASH_SIZE],
                    Py_ssize_t index, uint8_t out[HASH_SIZE])
{
    const Entry *entry_key = w->keys[index];
    const uint8_t *key = entry_key->key;
    Above above[MAX_PAGES_ON_PATH];
    int n_above = 0;
    int entry = slot;
    int nibble = nibble_at(key, page_depth);
    uint8_t node_hash[HASH_SIZE];
    uint8_t record[RECORD_SIZE];
    memcpy(node_hash, entry_hash, HASH_SIZE);

    for (;;) {
        uint8_t *current;
        if (!(page->mask >> slot & 1)) {
            make_leaf(record, entry_key);
            put_slot(page, slot, record);
            break;
        }
        current = page->rec[slot];
        if (current[0] == LEAF_TAG) {
            uint8_t resident[RECORD_SIZE];
            int depth, split;
            unsigned mask;
            if (memcmp(current + 1, key, KEY_SIZE) == 0) {
                make_leaf(record, entry_key);
                memcpy(current, record, RECORD_SIZE);
                break;
            }
            /* The key meets a resident leaf: one-sided nodes down to where their paths
             * part, then the two leaves side by side. A chain node's record holds two
             * empty children and the split node's two copies of the resident's hash; the
             * way up overwrites the key's side. */
            if (slot != entry) {
                const uint8_t *parent = page->rec[(slot - 1) >> 1];
                memcpy(node_hash, (slot & 1) ? parent + 1 : parent + 1 + HASH_SIZE, HASH_SIZE);
            }
            memcpy(resident, current, RECORD_SIZE);
            depth = page_depth + slot_level[slot];
            split = shared_bits(key, resident + 1);
            mask = page->mask;
            set_path_record(record, depth < split, node_hash);
            memcpy(current, record, RECORD_SIZE);
            while (depth < split) {
                depth++;
                if (slot < PAGE_BOTTOM) {
                    slot = next_slot(nibble, slot);
                } else {
                    if (n_above >= MAX_PAGES_ON_PATH) {
                        return corrupt("path longer than 256 levels", depth);
                    }
                    page->mask = (uint16_t)mask;
                    above[n_above++] = (Above){page, page_depth, entry, slot, nibble & 1};
                    page_depth = depth;
                    entry = slot = 0;
                    mask = 0;
                    nibble = nibble_at(key, depth);
                    page = page_new(w);
                    if (page == NULL) {
                        return -1;
                    }
                }
                set_path_record(record, depth < split, node_hash);
                memcpy(page->rec[slot], record, RECORD_SIZE);
                mask |= 1u << slot;
            }
            make_leaf(record, entry_key);
            if (slot < PAGE_BOTTOM) {
                int left_slot;
                slot = next_slot(nibble, slot);
                left_slot = (slot - 1) | 1; /* the two leaves are siblings: slots 2s + 1, 2s + 2 */
                memcpy(page->rec[left_slot], slot == left_slot ? record : resident, RECORD_SIZE);
                memcpy(page->rec[left_slot + 1], slot == left_slot ? resident : record, RECORD_SIZE);
                page->mask = (uint16_t)(mask | 3u << left_slot);
            } else {
                Page *moved;
                int rc;
                if (n_above >= MAX_PAGES_ON_PATH) {
                    return corrupt("path longer than 256 levels", depth);
                }
                page->mask = (uint16_t)mask;
                above[n_above++] = (Above){page, page_depth, entry, slot, nibble & 1};
                page_depth = depth + 1;
                /* The two leaves root pages of their own, the resident's written now. */
                moved = page_new(w);
                if (moved == NULL) {
                    return -1;
                }
                put_slot(moved, 0, resident);
                rc = put_page(w, resident + 1, page_depth, moved, node_hash);
                page_release(w, moved);
                if (rc < 0) {
                    return -1;
                }
                entry = slot = 0;
                page = page_new(w);
                if (page == NULL) {
                    return -1;
                }
                put_slot(page, 0, record);
            }
            break;
        }
        /* An internal node: on down, within the page or into the next one. */
        if (slot < PAGE_BOTTOM) {
            slot = next_slot(nibble, slot);
            continue;
        }
        if (n_above >= MAX_PAGES_ON_PATH || page_depth + 4 > MAX_DEPTH) {
            return corrupt("internal node below the last level", page_depth + 3);
        }
        {
            int bit = nibble & 1;
            memcpy(node_hash, bit ? current + 1 + HASH_SIZE : current + 1, HASH_SIZE);
            above[n_above++] = (Above){page, page_depth, entry, slot, bit};
        }
        page_depth += 4;
        entry = slot = 0;
        nibble = nibble_at(key, page_depth);
        page = page_new(w);
        if (page == NULL) {
            return -1;
        }
        if (!is_empty(node_hash) && take_page(w, page_depth, key, node_hash, page) < 0) {
            return -1;
        }
    }

    /* Up: rehash each node on the path with its new child, page by page. */
    hash_record(record, node_hash);
    for (;;) {
        Above back;
        uint8_t *parent;
        while (slot != entry) {
            parent = page->rec[(slot - 1) >> 1];
            if (slot & 1) {
                parent[0] = INTERNAL_TAG;
                memcpy(parent + 1, node_hash, HASH_SIZE);
            } else {
                memcpy(parent + 1 + HASH_SIZE, node_hash, HASH_SIZE);
            }
            slot = (slot - 1) >> 1;
            hash_record(parent, node_hash);
        }
        if (n_above == 0) {
            memcpy(out, node_hash, HASH_SIZE);
            return 0;
        }
        if (put_page(w, key, page_depth, page, node_hash) < 0) {
            return -1;
        }
        page_release(w, page); /* below the caller's page, every page is the walk's own */
        back = above[--n_above];
        page = back.page;
        page_depth = back.page_depth;
        entry = back.entry;
        slot = back.slot;
        parent = page->rec[slot];
        if (back.bit) {
            memcpy(parent + 1 + HASH_SIZE, node_hash, HASH_SIZE);
        } else {
            parent[0] = INTERNAL_TAG;
            memcpy(parent + 1, node_hash, HASH_SIZE);
        }
        hash_record(parent, node_hash);
    }
}

static int walk_page(Walk *w, int depth, const uint8_t node_hash[HASH_SIZE], Py_ssize_t lo, Py_ssize_t hi,
                     uint8_t out[HASH_SIZE]);

/* Keys lo..hi (two or more) from ``slot`` of ``page``, the page at ``page_depth``. */
static int walk(Walk *w, int page_depth, int slot, Page *page, const uint8_t node_hash[HASH_SIZE], Py_ssize_t lo,
                Py_ssize_t hi, uint8_t out[HASH_SIZE])
{
    int depth = page_depth + slot_level[slot];
    uint8_t record[RECORD_SIZE];
    uint8_t left[HASH_SIZE], right[HASH_SIZE];
    Py_ssize_t mid;
    int rc = 0;
    if (is_empty(node_hash)) {
        return build(w, page, slot, depth, w->keys, lo, hi, out);
    }
    if (!(page->mask >> slot & 1)) {
        return corrupt("page without the node its parent names", depth);
    }
    memcpy(record, page->rec[slot], RECORD_SIZE);
    if (record[0] == LEAF_TAG) {
        return merge(w, page, slot, depth, record, lo, hi, out);
    }
    if (depth >= MAX_DEPTH) {
        return corrupt("internal node below the last level", depth);
    }
    mid = split_point(w->keys, lo, hi, depth);
    memcpy(left, record + 1, HASH_SIZE);
    memcpy(right, record + 1 + HASH_SIZE, HASH_SIZE);
    if (slot >= PAGE_BOTTOM) {
        if (mid > lo) {
            rc = walk_page(w, depth + 1, record + 1, lo, mid, left);
        }
        if (rc == 0 && hi > mid) {
            rc = walk_page(w, depth + 1, record + 1 + HASH_SIZE, mid, hi, right);
        }
    } else {
        if (mid - lo == 1) {
            rc = walk_one(w, page_depth, 2 * slot + 1, page, record + 1, lo, left);
        } else if (mid > lo) {
            rc = walk(w, page_depth, 2 * slot + 1, page, record + 1, lo, mid, left);
        }
        if (rc == 0 && hi - mid == 1) {
            rc = walk_one(w, page_depth, 2 * slot + 2, page, record + 1 + HASH_SIZE, mid, right);
        } else if (rc == 0 && hi > mid) {
            rc = walk(w, page_depth, 2 * slot + 2, page, record + 1 + HASH_SIZE, mid, hi, right);
        }
    }
    if (rc < 0) {
        return -1;
    }
    record[0] = INTERNAL_TAG;
    memcpy(record + 1, left, HASH_SIZE);
    memcpy(record + 1 + HASH_SIZE, right, HASH_SIZE);
    memcpy(page->rec[slot], record, RECORD_SIZE);
    hash_record(record, out);
    return 0;
}

/* Keys lo..hi into the page rooted at ``depth`` whose root hash is ``node_hash``. */
static int walk_page(Walk *w, int depth, const uint8_t node_hash[HASH_SIZE], Py_ssize_t lo, Py_ssize_t hi,
                     uint8_t out[HASH_SIZE])
{
    Page *page;
    int rc;
    if (is_empty(node_hash)) {
        return build_page(w, depth, w->keys, lo, hi, out);
    }
    if (depth > MAX_DEPTH) {
        return corrupt("page below the last level", depth);
    }
    page = page_new(w);
    if (page == NULL) {
        return -1;
    }
    rc = take_page(w, depth, w->keys[lo]->key, node_hash, page);
    if (rc == 0) {
        rc = hi - lo == 1 ? walk_one(w, depth, 0, page, node_hash, lo, out)
                          : walk(w, depth, 0, page, node_hash, lo, hi, out);
    }
    if (rc == 0) {
        rc = put_page(w, w->keys[lo]->key, depth, page, out);
    }
    page_release(w, page);
    return rc;
}

/* --- the module's functions --------------------------------------------------------- */

/* The value bytes' hash: any object with the buffer interface, as hashlib takes. */
static int hash_value(PyObject *value, uint8_t out[HASH_SIZE])
{
    Py_buffer view;
    if (PyObject_GetBuffer(value, &view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    sha256((const uint8_t *)view.buf, (size_t)view.len, out);
    PyBuffer_Release(&view);
    return 0;
}

static PyObject *smt_update(PyObject *self, PyObject *args)
{
    PyObject *ops, *young, *take, *keys, *items;
    const char *value_prefix, *page_prefix, *old_root;
    Py_ssize_t value_prefix_len, page_prefix_len, old_root_len, n, i;
    int cache_depth;
    Entry *entries = NULL;
    const Entry **list = NULL;
    PyObject **values = NULL;
    PyObject *result = NULL;
    uint8_t new_root[HASH_SIZE];
    Walk w;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!Oy#y#iy#O!O:update", &PyDict_Type, &ops, &PyDict_Type, &young, &take,
                          &value_prefix, &value_prefix_len, &page_prefix, &page_prefix_len, &cache_depth, &old_root,
                          &old_root_len, &PyList_Type, &keys, &items)) {
        return NULL;
    }
    n = PyList_GET_SIZE(keys);
    if (n == 0) {
        return PyBytes_FromStringAndSize(old_root, old_root_len);
    }
    entries = PyMem_Malloc((size_t)n * sizeof(*entries));
    list = PyMem_Malloc((size_t)n * sizeof(*list));
    values = PyMem_Calloc((size_t)n, sizeof(*values));
    if (entries == NULL || list == NULL || values == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* As the Python walk: each key checked and its value record put, in key order, then
     * the values hashed. */
    for (i = 0; i < n; i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        PyObject *name;
        int rc;
        if (!PyBytes_CheckExact(key) || PyBytes_GET_SIZE(key) != KEY_SIZE) {
            PyErr_Format(PyExc_ValueError, "expected a %d-byte key, got %R", KEY_SIZE, key);
            goto done;
        }
        memcpy(entries[i].key, PyBytes_AS_STRING(key), KEY_SIZE);
        list[i] = &entries[i];
        values[i] = PyObject_GetItem(items, key);
        if (values[i] == NULL) {
            goto done;
        }
        name = PyBytes_FromStringAndSize(NULL, value_prefix_len + KEY_SIZE);
        if (name == NULL) {
            goto done;
        }
        memcpy(PyBytes_AS_STRING(name), value_prefix, (size_t)value_prefix_len);
        memcpy(PyBytes_AS_STRING(name) + value_prefix_len, entries[i].key, KEY_SIZE);
        rc = PyDict_SetItem(ops, name, values[i]);
        Py_DECREF(name);
        if (rc < 0) {
            goto done;
        }
    }
    for (i = 0; i < n; i++) {
        if (hash_value(values[i], entries[i].value_hash) < 0) {
            goto done;
        }
    }
    if (old_root_len != HASH_SIZE) {
        PyErr_Format(StoreCorruptError, "expected a %d-byte state tree root, got %zd bytes", HASH_SIZE, old_root_len);
        goto done;
    }
    w.ops = ops;
    w.young = young;
    w.take_page = take;
    w.page_prefix = page_prefix;
    w.page_prefix_len = page_prefix_len;
    w.cache_depth = cache_depth;
    w.keys = list;
    w.all = NULL;
    w.free = NULL;
    if (walk_page(&w, 0, (const uint8_t *)old_root, 0, n, new_root) == 0) {
        result = PyBytes_FromStringAndSize((const char *)new_root, HASH_SIZE);
    }
    pages_free_all(&w);
done:
    if (values != NULL) {
        for (i = 0; i < n; i++) {
            Py_XDECREF(values[i]);
        }
    }
    PyMem_Free(values);
    PyMem_Free(list);
    PyMem_Free(entries);
    return result;
}

/* smt_store.parse_page: ``raw`` if it is the page whose root hashes to ``root_hash``. The
 * mask must name exactly the slots the nodes name, every record must hash to what its
 * parent names, and nothing may be left over. */
static PyObject *smt_parse_page(PyObject *self, PyObject *args)
{
    PyObject *raw_obj, *root_obj;
    Py_buffer raw, root;
    const uint8_t *named[PAGE_SLOTS] = {NULL};
    uint8_t digest[HASH_SIZE];
    int root_unmatchable = 0;
    int ok = 0;
    unsigned mask;
    Py_ssize_t end = 2;
    int slot;
    PyObject *result;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO:parse_page", &raw_obj, &root_obj)) {
        return NULL;
    }
    if (PyObject_GetBuffer(raw_obj, &raw, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(root_obj, &root, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&raw);
        return NULL;
    }
    const uint8_t *p = raw.buf;
    /* An empty root names no node; one of another length names a node nothing hashes to. */
    if (root.len == HASH_SIZE) {
        named[0] = root.buf;
    } else if (root.len != 0) {
        root_unmatchable = 1;
    }
    if (raw.len < 2) {
        goto done;
    }
    mask = (unsigned)p[0] << 8 | p[1];
    if (mask >> PAGE_SLOTS) {
        goto done;
    }
    for (slot = 0; slot < PAGE_SLOTS; slot++) {
        int is_named = named[slot] != NULL || (slot == 0 && root_unmatchable);
        const uint8_t *record;
        if (is_named != (int)(mask >> slot & 1)) {
            goto done;
        }
        if (!is_named) {
            continue;
        }
        if (named[slot] == NULL || raw.len - end < RECORD_SIZE) {
            goto done;
        }
        record = p + end;
        end += RECORD_SIZE;
        hash_record(record, digest);
        if (memcmp(digest, named[slot], HASH_SIZE) != 0) {
            goto done;
        }
        if (record[0] == INTERNAL_TAG) {
            if (slot < PAGE_BOTTOM) {
                if (!is_empty(record + 1)) {
                    named[2 * slot + 1] = record + 1;
                }
                if (!is_empty(record + 1 + HASH_SIZE)) {
                    named[2 * slot + 2] = record + 1 + HASH_SIZE;
                }
            }
        } else if (record[0] != LEAF_TAG) {
            goto done;
        }
    }
    ok = end == raw.len;
done:
    if (!ok) {
        result = Py_NewRef(Py_None);
    } else if (PyBytes_CheckExact(raw_obj)) {
        result = Py_NewRef(raw_obj); /* bytes(raw) of bytes is raw itself */
    } else {
        result = PyBytes_FromStringAndSize(raw.buf, raw.len);
    }
    PyBuffer_Release(&root);
    PyBuffer_Release(&raw);
    return result;
}

static PyObject *smt_sha256(PyObject *self, PyObject *arg)
{
    uint8_t digest[HASH_SIZE];
    (void)self;
    if (hash_value(arg, digest) < 0) {
        return NULL;
    }
    return PyBytes_FromStringAndSize((const char *)digest, HASH_SIZE);
}

/* The portable function whatever the CPU, so that the tests check both. */
static PyObject *smt_sha256_portable(PyObject *self, PyObject *arg)
{
    uint8_t digest[HASH_SIZE];
    Py_buffer view;
    (void)self;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    sha256_with(compress_portable, (const uint8_t *)view.buf, (size_t)view.len, digest);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)digest, HASH_SIZE);
}

static PyMethodDef methods[] = {
    {"update", smt_update, METH_VARARGS,
     "update(ops, young, take_page, value_prefix, page_prefix, cache_depth, old_root, keys, items) -> new root"},
    {"parse_page", smt_parse_page, METH_VARARGS, "parse_page(raw, root_hash) -> raw if it is that page, else None"},
    {"sha256", smt_sha256, METH_O, "sha256(data) -> the 32-byte SHA-256 digest"},
    {"sha256_portable", smt_sha256_portable, METH_O, "sha256(data) without the CPU's SHA extensions"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ledger._smtpage", NULL, -1, methods,
};

PyMODINIT_FUNC PyInit__smtpage(void)
{
    PyObject *errors, *m;
    errors = PyImport_ImportModule("ledger.errors");
    if (errors == NULL) {
        return NULL;
    }
    StoreCorruptError = PyObject_GetAttrString(errors, "StoreCorruptError");
    Py_DECREF(errors);
    if (StoreCorruptError == NULL) {
        return NULL;
    }
    m = PyModule_Create(&module);
    if (m == NULL) {
        Py_CLEAR(StoreCorruptError);
        return NULL;
    }
#ifdef HAVE_SHA_EXTENSIONS_CODE
    if (cpu_has_sha_extensions()) {
        compress = compress_sha_extensions;
    }
#endif
    /* True iff sha256 (and the walk) run on the CPU's SHA instructions. */
    if (PyModule_AddObjectRef(m, "SHA_EXTENSIONS", compress == compress_portable ? Py_False : Py_True) < 0) {
        Py_DECREF(m);
        Py_CLEAR(StoreCorruptError);
        return NULL;
    }
    return m;
}
