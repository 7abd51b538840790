/* The fuzz engine: builds a case (template + mutations), materialises it through the public C ABI only, runs
 * both phases with an executor scenario, and releases everything it made. See fuzz.h and README.md. */
#define _GNU_SOURCE
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fuzz_ops_gen.h"

/* ---- decisions ----------------------------------------------------------------------------------------- */
static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void fz_src_seed(fz_src *s, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->state = seed;
}

void fz_src_bytes(fz_src *s, const uint8_t *data, size_t size)
{
    memset(s, 0, sizeof *s);
    s->data = data;
    s->size = size;
}

static uint64_t take(fz_src *s, int nbytes)
{
    uint64_t v = 0;
    for (int i = 0; i < nbytes; i++) v = (v << 8) | (s->pos < s->size ? s->data[s->pos++] : 0);
    return v;
}

uint64_t fz_u64(fz_src *s) { return s->data ? take(s, 8) : splitmix(&s->state); }

uint64_t fz_below(fz_src *s, uint64_t n)
{
    if (n <= 1) return 0;
    if (!s->data) return splitmix(&s->state) % n;
    int nb = n <= 256 ? 1 : n <= 65536 ? 2 : n <= 0xffffffffull ? 4 : 8;
    return take(s, nb) % n;
}

/* with input bytes, a 0 byte means "no": an exhausted input is a valid, unmutated case */
int fz_chance(fz_src *s, unsigned percent) { return fz_below(s, 100) >= 100 - percent; }

int64_t fz_range(fz_src *s, int64_t lo, int64_t hi)
{
    return hi <= lo ? lo : lo + (int64_t)fz_below(s, (uint64_t)(hi - lo) + 1);
}

/* ---- what the running case is ----------------------------------------------------------------------- */
static __thread char g_desc[6000];
static __thread size_t g_desc_len;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    if (g_desc_len >= sizeof g_desc - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g_desc + g_desc_len, sizeof g_desc - g_desc_len, fmt, ap);
    va_end(ap);
    if (n > 0) g_desc_len += (size_t)n < sizeof g_desc - g_desc_len ? (size_t)n : sizeof g_desc - g_desc_len - 1;
}

static void desc_reset(void)
{
    g_desc_len = 0;
    g_desc[0] = 0;
}

const char *fz_describe(void) { return g_desc; }

/* printed by the sanitizers before they exit, or by our own handlers without them */
static void report(void)
{
    static volatile sig_atomic_t done; /* a death callback and then an abort: print once */
    if (done) return;
    done = 1;
    static const char head[] = "\n==fuzz== finding while running: ";
    (void)!write(2, head, sizeof head - 1);
    (void)!write(2, g_desc, strlen(g_desc));
    (void)!write(2, "\n", 1);
}

static void on_signal(int sig)
{
    report();
    if (sig == SIGALRM) {
        static const char m[] = "==fuzz== hang: the case did not finish within the time limit\n";
        (void)!write(2, m, sizeof m - 1);
        _exit(124);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

void fz_install_reporters(void)
{
    signal(SIGALRM, on_signal); /* the drivers arm alarm() per case */
    signal(SIGABRT, on_signal); /* the sanitizers abort with abort_on_error=1 (UBSan has no death callback) */
    if (__sanitizer_set_death_callback) {
        __sanitizer_set_death_callback(report);
    } else { /* no sanitizer: keep their handlers, install ours */
        signal(SIGSEGV, on_signal);
        signal(SIGBUS, on_signal);
        signal(SIGFPE, on_signal);
        signal(SIGILL, on_signal);
    }
}

/* ---- the operator table ------------------------------------------------------------------------------ */
const fz_op *fz_op_table(int *n)
{
    *n = FZ_NUM_OPS;
    return fz_ops;
}

int fz_op_find(const char *api)
{
    for (int i = 0; i < FZ_NUM_OPS; i++)
        if (strcmp(fz_ops[i].api, api) == 0) return i;
    return -1;
}

/* ---- case construction ------------------------------------------------------------------------------- */
static void generic_defaults(fz_case *c, fz_src *s)
{
    /* what an operator without a template gets: small float tensors, small attributes */
    for (int i = 0; i < c->nparams; i++) {
        fz_pspec *p = &c->p[i];
        memset(p, 0, sizeof *p);
        p->kind = c->def->params[i].kind;
        p->alias_of = -1;
        switch (p->kind) {
        case FZ_TENSOR:
            p->present = 1;
            p->dtype = fz_chance(s, 70) ? ACL_FLOAT : ACL_INT32;
            p->format = ACL_FORMAT_ND;
            p->ndim = (int)fz_range(s, 1, 2);
            for (int d = 0; d < p->ndim; d++) p->dims[d] = fz_range(s, 1, 8);
            p->fill = p->dtype == ACL_INT32 ? FILL_INDEX : FILL_FLOAT;
            p->hi = 4;
            break;
        case FZ_INTARRAY:
            p->present = 1;
            p->n = 2;
            p->v[0] = 0;
            p->v[1] = 1;
            break;
        case FZ_INT: p->i = fz_range(s, 0, 4); break;
        case FZ_BOOL: p->b = false; break;
        case FZ_DOUBLE: p->d = 1.0; break;
        }
    }
}

static const int64_t INT_EDGES[] = {0, -1, 1, 2, 3, 7, 8, 64, 255, 256, 257, 1024, 1025, 65536, INT32_MAX,
                                    (int64_t)INT32_MAX + 1, INT32_MIN, (int64_t)1 << 32, (int64_t)1 << 40,
                                    (int64_t)1 << 62, INT64_MAX, INT64_MIN, INT64_MIN + 1, INT64_MAX - 1};
#define N_INT_EDGES (sizeof INT_EDGES / sizeof INT_EDGES[0])

/* wrapping arithmetic: the fuzzer's own edge values must not be undefined behaviour */
static int64_t wrap_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t wrap_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }

static int64_t edge(fz_src *s, int64_t v)
{
    switch (fz_below(s, 4)) {
    case 0: return wrap_add(v, 1);
    case 1: return wrap_add(v, -1);
    case 2: return wrap_mul(v, 2);
    default: return INT_EDGES[fz_below(s, N_INT_EDGES)];
    }
}

static const aclDataType DTYPES[] = {ACL_FLOAT, ACL_FLOAT16, ACL_BF16, ACL_INT32, ACL_INT64, ACL_INT8, ACL_UINT8,
                                     ACL_BOOL, ACL_DOUBLE, ACL_INT16, ACL_COMPLEX64, ACL_UINT64,
                                     (aclDataType)999, (aclDataType)-1};

static void mutate_tensor(fz_case *c, int idx, fz_pspec *p, fz_src *s)
{
    const char *name = c->def->params[idx].name;
    int d = p->ndim > 0 ? (int)fz_below(s, (uint64_t)p->ndim) : 0;
    switch (fz_below(s, 14)) {
    case 0:
        if (p->ndim == 0) p->ndim = 1;
        p->dims[d] = edge(s, p->dims[d]);
        note(" %s.dims[%d]=%lld", name, d, (long long)p->dims[d]);
        break;
    case 1: {
        int nd = (int)fz_range(s, 0, FZ_MAX_DIMS + 2);
        for (int i = p->ndim; i < nd; i++) p->dims[i] = fz_range(s, 1, 2);
        p->ndim = nd;
        note(" %s.ndim=%d", name, nd);
        break;
    }
    case 2:
        p->dtype = DTYPES[fz_below(s, sizeof DTYPES / sizeof DTYPES[0])];
        note(" %s.dtype=%d", name, (int)p->dtype);
        break;
    case 3: {
        p->explicit_strides = 1;
        int64_t st = 1;
        for (int i = p->ndim - 1; i >= 0; i--) { p->strides[i] = st; st = wrap_mul(st, p->dims[i] ? p->dims[i] : 1); }
        switch (fz_below(s, 5)) {
        case 0: for (int i = 0; i < p->ndim; i++) p->strides[i] = 0; note(" %s.strides=0", name); break;
        case 1: p->strides[d] = edge(s, p->strides[d]); note(" %s.strides[%d]=%lld", name, d,
                                                              (long long)p->strides[d]); break;
        case 2: /* transposed */
            for (int i = 0; i < p->ndim / 2; i++) {
                int64_t t = p->strides[i]; p->strides[i] = p->strides[p->ndim - 1 - i]; p->strides[p->ndim - 1 - i] = t;
            }
            note(" %s.strides=transposed", name);
            break;
        case 3:
            for (int i = 0; i < p->ndim; i++) p->strides[i] = wrap_mul(p->strides[i], 2);
            note(" %s.strides*=2", name);
            break;
        default: p->strides[d] = -1; note(" %s.strides[%d]=-1", name, d); break;
        }
        break;
    }
    case 4:
        p->offset = fz_chance(s, 50) ? fz_range(s, 1, 64) : edge(s, p->offset);
        note(" %s.offset=%lld", name, (long long)p->offset);
        break;
    case 5:
        p->explicit_storage = 1;
        switch (fz_below(s, 4)) {
        case 0: p->storage_ndim = 0; break;
        case 1: p->storage_ndim = 1; p->storage[0] = fz_range(s, 0, 4); break;
        case 2: p->storage_ndim = 2; p->storage[0] = (int64_t)1 << 32; p->storage[1] = (int64_t)1 << 32; break;
        default:
            p->storage_ndim = p->ndim;
            for (int i = 0; i < p->ndim; i++) p->storage[i] = p->dims[i];
            if (p->ndim) p->storage[d] = edge(s, p->storage[d]);
            break;
        }
        note(" %s.storage(nd %d)", name, p->storage_ndim);
        break;
    case 6:
        p->data_mode = (int)fz_range(s, 1, DATA_COUNT - 1);
        if (p->data_mode == DATA_ALIAS) {
            p->alias_of = (int)fz_below(s, (uint64_t)c->nparams);
            note(" %s.data=alias(%s)", name, c->def->params[p->alias_of].name);
        } else {
            note(" %s.data=mode%d", name, p->data_mode);
        }
        break;
    case 7:
        p->handle_mode = (int)fz_range(s, 1, HANDLE_COUNT - 1);
        note(" %s.handle=mode%d", name, p->handle_mode);
        break;
    case 8:
        p->bad_values = (int)fz_range(s, 1, 4);
        note(" %s.bad_values=%d", name, p->bad_values);
        break;
    case 9: {
        static const aclFormat F[] = {ACL_FORMAT_NCHW, ACL_FORMAT_NHWC, ACL_FORMAT_FRACTAL_NZ, (aclFormat)-1,
                                      (aclFormat)1000};
        p->format = F[fz_below(s, 5)];
        note(" %s.format=%d", name, (int)p->format);
        break;
    }
    case 10:
        p->present = !p->present;
        note(" %s.present=%d", name, p->present);
        break;
    case 11: /* a stride-0 view with a huge trailing dim over one element: extents and grains overflow */
        if (p->ndim == 0) p->ndim = 1;
        p->dims[p->ndim - 1] = fz_chance(s, 50) ? (int64_t)1 << 62 : (int64_t)1 << 31;
        p->explicit_strides = 1;
        for (int i = 0; i < p->ndim; i++) p->strides[i] = 0;
        p->explicit_storage = 1;
        p->storage_ndim = 1;
        p->storage[0] = 1;
        note(" %s=broadcast(huge)", name);
        break;
    case 12: /* an extent that wraps int64: dims [2^31, 2^31] strides [2^33, 1] over a small storage */
        p->ndim = 2;
        p->dims[0] = p->dims[1] = (int64_t)1 << 31;
        p->explicit_strides = 1;
        p->strides[0] = (int64_t)1 << 33;
        p->strides[1] = fz_chance(s, 50) ? 1 : (int64_t)1 << 62;
        p->explicit_storage = 1;
        p->storage_ndim = 1;
        p->storage[0] = fz_range(s, 1, 64);
        note(" %s=wrapping extent", name);
        break;
    default: /* NULL strides with dims whose product passes INT64_MAX */
        p->ndim = 3;
        p->dims[0] = p->dims[1] = (int64_t)1 << 31;
        p->dims[2] = 8;
        p->explicit_strides = 0;
        p->explicit_storage = 1;
        p->storage_ndim = 1;
        p->storage[0] = 16;
        note(" %s=overflowing contiguous dims", name);
        break;
    }
}

static void mutate_intarray(fz_case *c, int idx, fz_pspec *p, fz_src *s)
{
    const char *name = c->def->params[idx].name;
    switch (fz_below(s, 5)) {
    case 0:
        p->present = !p->present;
        if (!p->n) { p->n = 2; p->v[0] = 0; p->v[1] = 1; }
        note(" %s.present=%d", name, p->present);
        break;
    case 1:
        p->n = fz_range(s, 0, 4);
        note(" %s.size=%lld", name, (long long)p->n);
        break;
    case 2: {
        int i = (int)fz_below(s, p->n > 0 ? (uint64_t)p->n : 1);
        p->v[i] = edge(s, p->v[i]);
        note(" %s[%d]=%lld", name, i, (long long)p->v[i]);
        break;
    }
    case 3: {
        int64_t t = p->v[0]; p->v[0] = p->v[1]; p->v[1] = t;
        note(" %s=swapped", name);
        break;
    }
    default:
        p->handle_mode = (int)fz_range(s, 1, HANDLE_COUNT - 1);
        note(" %s.handle=mode%d", name, p->handle_mode);
        break;
    }
}

static void mutate(fz_case *c, fz_src *s)
{
    int nmut = (int)fz_range(s, 1, 4);
    for (int m = 0; m < nmut; m++) {
        int i = (int)fz_below(s, (uint64_t)c->nparams);
        fz_pspec *p = &c->p[i];
        const char *name = c->def->params[i].name;
        switch (p->kind) {
        case FZ_TENSOR: mutate_tensor(c, i, p, s); break;
        case FZ_INTARRAY: mutate_intarray(c, i, p, s); break;
        case FZ_INT: p->i = edge(s, p->i); note(" %s=%lld", name, (long long)p->i); break;
        case FZ_BOOL: p->b = !p->b; note(" %s=%d", name, (int)p->b); break;
        case FZ_DOUBLE: {
            static const double E[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1e308, 5e-324, -1.0, 1e-45};
            p->d = E[fz_below(s, sizeof E / sizeof E[0])];
            note(" %s=%g", name, p->d);
            break;
        }
        }
    }
}

static void build_case(fz_case *c, int op, fz_src *s, int mutations)
{
    int n;
    const fz_op *ops = fz_op_table(&n);
    memset(c, 0, sizeof *c);
    c->op = op;
    c->def = &ops[op];
    c->nparams = c->def->nparams < FZ_MAX_PARAMS ? c->def->nparams : FZ_MAX_PARAMS;
    generic_defaults(c, s);
    fz_template(c, s);
    c->fill_seed = fz_u64(s);
    if (mutations) mutate(c, s);
}

/* ---- materialisation ----------------------------------------------------------------------------------- */
#define FZ_MAX_BLOCK ((uint64_t)16 << 20)

typedef struct {
    void *dev;          /* aclrtMalloc block to aclrtFree, or NULL */
    void *host;         /* malloc'd foreign memory to free(), or NULL */
    uint64_t bytes;     /* usable bytes at `data` (0: none we may touch) */
    void *data;         /* the address given to the descriptor */
    aclTensor *tensor;  /* live handle to destroy */
    aclIntArray *array; /* live handle to destroy */
    aclIntArray *decoy; /* the wrong-type object passed instead of a tensor */
    aclTensor *decoy_t; /* the wrong-type object passed instead of an array */
    const void *arg;    /* what the call receives */
} fz_live;

typedef struct {
    fz_case c;
    fz_live l[FZ_MAX_PARAMS];
    fz_arg args[FZ_MAX_PARAMS];
    uint64_t calls;
} fz_run;

static int mul_ok(int64_t a, int64_t b, int64_t *r) { return !__builtin_mul_overflow(a, b, r); }

/* elements the descriptor claims as storage; -1 when the product overflows or is negative */
static int64_t claimed_storage(const fz_pspec *p)
{
    int64_t n = 1;
    int nd = p->explicit_storage ? p->storage_ndim : p->ndim;
    const int64_t *dims = p->explicit_storage ? p->storage : p->dims;
    for (int i = 0; i < nd; i++)
        if (dims[i] < 0 || !mul_ok(n, dims[i], &n)) return -1;
    return n;
}

static int64_t view_numel(const fz_pspec *p)
{
    int64_t n = 1;
    for (int i = 0; i < p->ndim; i++)
        if (p->dims[i] < 0 || !mul_ok(n, p->dims[i], &n)) return -1;
    return n;
}

static int64_t dsize(aclDataType dt)
{
    switch (dt) {
    case ACL_FLOAT: case ACL_INT32: case ACL_UINT32: return 4;
    case ACL_FLOAT16: case ACL_BF16: case ACL_INT16: case ACL_UINT16: return 2;
    case ACL_INT64: case ACL_UINT64: case ACL_DOUBLE: case ACL_COMPLEX64: return 8;
    case ACL_INT8: case ACL_UINT8: case ACL_BOOL: return 1;
    default: return 4;
    }
}

static uint16_t f32_to_f16(float f)
{
    /* small exact values only (the fills use multiples of 1/16 in [-4, 4]) */
    if (f == 0) return 0;
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    int32_t e = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t m = (x >> 13) & 0x3ffu;
    if (e <= 0) return (uint16_t)sign;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u);
    return (uint16_t)(sign | ((uint32_t)e << 10) | m);
}

static void store(aclDataType dt, unsigned char *p, double v)
{
    switch (dt) {
    case ACL_FLOAT: { float f = (float)v; memcpy(p, &f, 4); break; }
    case ACL_DOUBLE: memcpy(p, &v, 8); break;
    case ACL_FLOAT16: { uint16_t h = f32_to_f16((float)v); memcpy(p, &h, 2); break; }
    case ACL_BF16: { float f = (float)v; uint32_t x; memcpy(&x, &f, 4); uint16_t h = (uint16_t)(x >> 16);
                     memcpy(p, &h, 2); break; }
    case ACL_INT64: case ACL_UINT64: { int64_t i = isnan(v) ? 0 : (int64_t)v; memcpy(p, &i, 8); break; }
    case ACL_INT32: case ACL_UINT32: { int32_t i = isnan(v) ? 0 : (int32_t)v; memcpy(p, &i, 4); break; }
    case ACL_INT16: case ACL_UINT16: { int16_t i = (int16_t)(isnan(v) ? 0 : v); memcpy(p, &i, 2); break; }
    case ACL_INT8: case ACL_UINT8: case ACL_BOOL: { int8_t i = (int8_t)(isnan(v) ? 0 : v); memcpy(p, &i, 1);
                                                    break; }
    default: memset(p, 0, (size_t)dsize(dt)); break;
    }
}

static void store_i(aclDataType dt, unsigned char *p, int64_t v)
{
    if (dt == ACL_INT64 || dt == ACL_UINT64) memcpy(p, &v, 8);
    else if (dt == ACL_INT32 || dt == ACL_UINT32) { int32_t i = (int32_t)v; memcpy(p, &i, 4); }
    else store(dt, p, (double)v);
}

/* fills the first min(count, numel) elements at `data` as the spec says; the rest of the block is zero */
static void fill(const fz_pspec *p, unsigned char *data, uint64_t bytes, uint64_t *seed)
{
    int64_t es = dsize(p->dtype), count = (int64_t)(bytes / (uint64_t)es), numel = view_numel(p);
    if (numel < 0 || numel > count) numel = count;
    memset(data, 0, bytes);
    switch (p->fill) {
    case FILL_FLOAT:
        for (int64_t i = 0; i < numel; i++)
            store(p->dtype, data + i * es, (double)((int64_t)(splitmix(seed) % 129) - 64) / 16.0);
        break;
    case FILL_INDEX:
        for (int64_t i = 0; i < numel; i++)
            store_i(p->dtype, data + i * es, p->hi > p->lo ? p->lo + (int64_t)(splitmix(seed) %
                                                                              (uint64_t)(p->hi - p->lo)) : p->lo);
        break;
    case FILL_SORTED: {
        int64_t v = p->lo;
        for (int64_t i = 0; i < numel; i++) {
            if (v < p->hi - 1 && splitmix(seed) % 3 == 0) v++;
            store_i(p->dtype, data + i * es, v);
        }
        break;
    }
    case FILL_PERM: {
        int64_t n = p->hi < numel ? p->hi : numel;
        for (int64_t i = 0; i < n; i++) store_i(p->dtype, data + i * es, i);
        for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates over the stored values */
            int64_t j = (int64_t)(splitmix(seed) % (uint64_t)(i + 1));
            unsigned char tmp[8];
            memcpy(tmp, data + i * es, (size_t)es);
            memcpy(data + i * es, data + j * es, (size_t)es);
            memcpy(data + j * es, tmp, (size_t)es);
        }
        break;
    }
    case FILL_COUNTS: { /* non-negative counts summing to hi */
        int64_t left = p->hi;
        for (int64_t i = 0; i < numel; i++) {
            int64_t v = i == numel - 1 ? left : (left > 0 ? (int64_t)(splitmix(seed) % (uint64_t)(left + 1)) : 0);
            store_i(p->dtype, data + i * es, v);
            left -= v;
        }
        break;
    }
    default: break;
    }
    if (p->bad_values && numel > 0) {
        static const int64_t BAD[] = {-1, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, 1 << 20};
        static const double BADF[] = {NAN, INFINITY, -INFINITY, 1e30, -1e30};
        for (int k = 0; k < p->bad_values; k++) {
            int64_t i = (int64_t)(splitmix(seed) % (uint64_t)numel);
            if (p->fill == FILL_FLOAT) store(p->dtype, data + i * es, BADF[splitmix(seed) % 5]);
            else if (splitmix(seed) % 2) store_i(p->dtype, data + i * es, p->hi + (int64_t)(splitmix(seed) % 3));
            else store_i(p->dtype, data + i * es, BAD[splitmix(seed) % 6]);
        }
    }
}

/* a heap address that was just freed: any read through it is a use-after-free the sanitizers report */
static __attribute__((noinline)) void *freed_address(size_t n)
{
    void *m = malloc(n);
    volatile uintptr_t a = (uintptr_t)m; /* volatile: the compiler must not reason about it */
    free(m);
    return (void *)a;
}

static void *dev_alloc(fz_run *r, uint64_t bytes)
{
    void *p = NULL;
    r->calls++;
    if (aclrtMalloc(&p, bytes ? bytes : 1, ACL_MEM_MALLOC_HUGE_FIRST) != ACL_SUCCESS) return NULL;
    return p;
}

static void materialise_tensor(fz_run *r, int i)
{
    fz_pspec *p = &r->c.p[i];
    fz_live *l = &r->l[i];
    if (!p->present) return;
    int64_t es = dsize(p->dtype), claimed = claimed_storage(p);
    uint64_t bytes = 256; /* a lie the runtime must catch when the claim is absurd */
    int64_t b;
    if (claimed >= 0 && mul_ok(claimed, es, &b) && (uint64_t)b <= FZ_MAX_BLOCK) bytes = (uint64_t)b;
    switch (p->data_mode) {
    case DATA_NULL: break;
    case DATA_UNMAPPED: l->data = (void *)(uintptr_t)0x7000; break;
    case DATA_FREED: {
        void *d = dev_alloc(r, bytes);
        if (d) { aclrtFree(d); r->calls++; }
        l->data = d;
        break;
    }
    case DATA_FOREIGN:
        l->host = malloc(bytes ? bytes : 1);
        l->data = l->host;
        l->bytes = l->host ? bytes : 0;
        break;
    case DATA_INTERIOR: case DATA_MISALIGNED:
        l->dev = dev_alloc(r, bytes + 128);
        if (l->dev) {
            uint64_t off = p->data_mode == DATA_INTERIOR ? 64 : (uint64_t)(1 + r->c.fill_seed % 3);
            l->data = (char *)l->dev + off;
            l->bytes = bytes + 128 - off;
        }
        break;
    case DATA_PAST_END: /* the view runs off the end of its block */
        l->dev = dev_alloc(r, bytes + 64);
        if (l->dev) {
            l->data = (char *)l->dev + 64 + (bytes / 2 / 64) * 64;
            l->bytes = bytes - (bytes / 2 / 64) * 64;
        }
        break;
    case DATA_SHORT:
        l->dev = dev_alloc(r, bytes / 2 ? bytes / 2 : 1);
        l->data = l->dev;
        l->bytes = l->dev ? (bytes / 2 ? bytes / 2 : 1) : 0;
        break;
    case DATA_ALIAS:
        if (p->alias_of >= 0 && p->alias_of < i && r->l[p->alias_of].data) {
            l->data = r->l[p->alias_of].data;
            break;
        }
        /* nothing to alias yet: an ordinary block */
        __attribute__((fallthrough));
    default:
        l->dev = dev_alloc(r, bytes);
        l->data = l->dev;
        l->bytes = l->dev ? bytes : 0;
        break;
    }
    /* the host runtime's device memory is host memory: fill it in place */
    if (l->bytes) fill(p, (unsigned char *)l->data, l->bytes, &r->c.fill_seed);
    const int64_t *st = p->explicit_strides ? p->strides : NULL;
    const int64_t *sd = p->explicit_storage ? p->storage : p->dims;
    uint64_t snd = (uint64_t)(p->explicit_storage ? p->storage_ndim : p->ndim);
    r->calls++;
    aclTensor *t = aclCreateTensor(p->dims, (uint64_t)p->ndim, p->dtype, st, p->offset, p->format, sd, snd, l->data);
    l->tensor = t;
    l->arg = t;
    switch (p->handle_mode) {
    case HANDLE_NULL: l->arg = NULL; break;
    case HANDLE_DESTROYED:
        if (t) { aclDestroyTensor(t); r->calls++; }
        l->tensor = NULL;
        break;
    case HANDLE_WILD_UNMAPPED: l->arg = (const void *)(uintptr_t)(0x5000 + 8 * (r->c.fill_seed % 64)); break;
    case HANDLE_WILD_FREED: l->arg = freed_address(512); break;
    case HANDLE_WRONG_TYPE: {
        int64_t v[2] = {0, 1};
        l->decoy = aclCreateIntArray(v, 2);
        r->calls++;
        l->arg = l->decoy;
        break;
    }
    default: break;
    }
    r->args[i].t = (const aclTensor *)l->arg;
}

static void materialise_array(fz_run *r, int i)
{
    fz_pspec *p = &r->c.p[i];
    fz_live *l = &r->l[i];
    if (!p->present) return;
    r->calls++;
    l->array = aclCreateIntArray(p->v, (uint64_t)p->n);
    l->arg = l->array;
    switch (p->handle_mode) {
    case HANDLE_NULL: l->arg = NULL; break;
    case HANDLE_DESTROYED:
        if (l->array) { aclDestroyIntArray(l->array); r->calls++; }
        l->array = NULL;
        break;
    case HANDLE_WILD_UNMAPPED: l->arg = (const void *)(uintptr_t)0x6000; break;
    case HANDLE_WILD_FREED: l->arg = freed_address(64); break;
    case HANDLE_WRONG_TYPE: {
        int64_t d[1] = {2};
        l->decoy_t = aclCreateTensor(d, 1, ACL_INT64, NULL, 0, ACL_FORMAT_ND, d, 1, NULL);
        r->calls++;
        l->arg = l->decoy_t;
        break;
    }
    default: break;
    }
    r->args[i].ia = (const aclIntArray *)l->arg;
}

static void materialise(fz_run *r)
{
    memset(r->l, 0, sizeof r->l);
    memset(r->args, 0, sizeof r->args);
    for (int i = 0; i < r->c.nparams; i++) {
        fz_pspec *p = &r->c.p[i];
        switch (p->kind) {
        case FZ_TENSOR: materialise_tensor(r, i); break;
        case FZ_INTARRAY: materialise_array(r, i); break;
        case FZ_INT: r->args[i].i = p->i; break;
        case FZ_BOOL: r->args[i].b = p->b; break;
        case FZ_DOUBLE: r->args[i].d = p->d; break;
        }
    }
}

static void release(fz_run *r)
{
    for (int i = 0; i < r->c.nparams; i++) {
        fz_live *l = &r->l[i];
        if (l->tensor) aclDestroyTensor(l->tensor);
        if (l->array) aclDestroyIntArray(l->array);
        if (l->decoy) aclDestroyIntArray(l->decoy);
        if (l->decoy_t) aclDestroyTensor(l->decoy_t);
        if (l->dev) aclrtFree(l->dev);
        free(l->host);
        memset(l, 0, sizeof *l);
    }
}

/* reads the message of the last failure: a dangling or unterminated message is a finding too */
static void touch_message(void)
{
    const char *m = aclGetRecentErrMsg();
    if (m) note(" [%.160s]", m);
}

/* ---- executor scenarios ------------------------------------------------------------------------------ */
enum { EX_NORMAL, EX_WS_NULL, EX_WS_LIE_BIGGER, EX_WS_SMALLER, EX_WS_FOREIGN, EX_WS_ALIAS, EX_WS_MISALIGNED,
       EX_DOUBLE_RUN, EX_REPEATABLE, EX_DESTROY_FIRST, EX_WRONG_PHASE2, EX_BAD_STREAM, EX_REBIND_BAD, EX_COUNT };

static aclrtStream g_dead_stream; /* created and destroyed at setup: a stale handle */

static int64_t tensor_index_count(const fz_case *c, int outputs)
{
    int64_t n = 0;
    for (int i = 0; i < c->nparams; i++)
        if (c->def->params[i].kind == FZ_TENSOR && c->def->params[i].is_output == outputs) n++;
    return n;
}

static void *some_operand_block(fz_run *r, fz_src *s, uint64_t *bytes)
{
    int start = (int)fz_below(s, (uint64_t)r->c.nparams);
    for (int k = 0; k < r->c.nparams; k++) {
        fz_live *l = &r->l[(start + k) % r->c.nparams];
        if (l->data && l->bytes) { *bytes = l->bytes; return l->data; }
    }
    *bytes = 0;
    return NULL;
}

static int phase2(fz_run *r, void *ws, uint64_t wss, aclOpExecutor *ex, aclrtStream st)
{
    r->calls++;
    int rc = r->c.def->phase2(ws, wss, ex, st);
    if (rc) touch_message();
    return rc;
}

static int run_scenario(fz_ctx *ctx, fz_run *r, fz_src *s, aclOpExecutor *ex, uint64_t wss, int scenario)
{
    void *ws = NULL, *foreign = NULL;
    int rc = 0, nops;
    const fz_op *ops = fz_op_table(&nops);
    if (wss && wss <= FZ_MAX_BLOCK) ws = dev_alloc(r, wss);
    aclrtStream st = ctx->stream;
    note(" | ws=%llu scenario=%d", (unsigned long long)wss, scenario);
    switch (scenario) {
    case EX_WS_NULL: rc = phase2(r, NULL, wss, ex, st); break;
    case EX_WS_LIE_BIGGER: {
        static const uint64_t LIE[] = {1, 64, 4096, 1 << 20, (uint64_t)1 << 40, UINT64_MAX};
        uint64_t lie = LIE[fz_below(s, 6)];
        rc = phase2(r, ws, wss + lie < wss ? UINT64_MAX : wss + lie, ex, st);
        break;
    }
    case EX_WS_SMALLER: rc = phase2(r, ws, wss ? wss - 1 - fz_below(s, wss) : 0, ex, st); break;
    case EX_WS_FOREIGN: /* host memory of the size asked for (bounded: phase 1 may ask for gigabytes) */
        foreign = malloc(wss && wss <= FZ_MAX_BLOCK ? wss : 64);
        rc = phase2(r, foreign, wss, ex, st);
        break;
    case EX_WS_ALIAS: { /* the workspace overlaps an operand */
        uint64_t b;
        void *w = some_operand_block(r, s, &b);
        rc = phase2(r, w, fz_chance(s, 50) ? b : wss, ex, st);
        break;
    }
    case EX_WS_MISALIGNED:
        if (ws) { aclrtFree(ws); r->calls++; }
        ws = wss ? dev_alloc(r, wss + 64) : NULL;
        rc = phase2(r, ws ? (char *)ws + 1 : NULL, wss, ex, st);
        break;
    case EX_DOUBLE_RUN: /* the first run frees a non-repeatable executor; the second must say so */
        rc = phase2(r, ws, wss, ex, st);
        phase2(r, ws, wss, ex, st);
        break;
    case EX_REPEATABLE: case EX_REBIND_BAD: {
        r->calls++;
        if (aclSetAclOpExecutorRepeatable(ex) != 0) { touch_message(); rc = phase2(r, ws, wss, ex, st); break; }
        int runs = (int)fz_range(s, 1, 3);
        for (int k = 0; k < runs; k++) {
            if (scenario == EX_REBIND_BAD || fz_chance(s, 30)) {
                int outputs = fz_chance(s, 40);
                int64_t n = tensor_index_count(&r->c, outputs);
                size_t idx = fz_chance(s, 70) ? (size_t)fz_range(s, 0, n + 1) : (size_t)edge(s, n);
                uint64_t b;
                void *addr = some_operand_block(r, s, &b);
                switch (fz_below(s, 5)) {
                case 0: addr = NULL; break;
                case 1: if (addr) addr = (char *)addr + 1; break;
                case 2: addr = (void *)(uintptr_t)0x7000; break;
                case 3: addr = r->l[0].host ? r->l[0].host : addr; break;
                default: break;
                }
                aclTensor *t = fz_chance(s, 50) ? NULL : r->l[fz_below(s, (uint64_t)r->c.nparams)].tensor;
                r->calls++;
                int e = outputs ? aclSetOutputTensorAddr(ex, idx, t, addr) : aclSetInputTensorAddr(ex, idx, t, addr);
                if (fz_chance(s, 20)) { r->calls++; aclSetTensorAddr(ex, idx, t, addr); }
                if (fz_chance(s, 10)) { r->calls++; aclSetDynamicInputTensorAddr(ex, idx, 0, NULL, addr); }
                if (e) touch_message();
                note(" rebind(%s %zu)=%d", outputs ? "out" : "in", idx, e);
            }
            int e = phase2(r, ws, wss, ex, st);
            if (k == 0) rc = e;
        }
        r->calls++;
        aclDestroyAclOpExecutor(ex);
        /* use after destroy: every call must see a dead executor */
        phase2(r, ws, wss, ex, st);
        r->calls += 3;
        aclDestroyAclOpExecutor(ex);
        aclSetInputTensorAddr(ex, 0, NULL, ws);
        aclSetAclOpExecutorRepeatable(ex);
        break;
    }
    case EX_DESTROY_FIRST: /* CANN deletes a non-repeatable executor here; either way phase 2 must not crash */
        r->calls++;
        if (aclDestroyAclOpExecutor(ex) != 0) touch_message();
        rc = phase2(r, ws, wss, ex, st);
        break;
    case EX_WRONG_PHASE2: { /* another operator's phase 2 with this executor */
        int other = (int)fz_below(s, (uint64_t)nops);
        r->calls++;
        int e = ops[other].phase2(ws, wss, ex, st);
        if (e) touch_message();
        rc = e == 0 ? 0 : phase2(r, ws, wss, ex, st);
        break;
    }
    case EX_BAD_STREAM: {
        aclrtStream bad = fz_chance(s, 50) ? g_dead_stream : (aclrtStream)(uintptr_t)0x4000;
        rc = phase2(r, ws, wss, ex, bad);
        break;
    }
    default: rc = phase2(r, ws, wss, ex, st); break;
    }
    if (ws) { aclrtFree(ws); r->calls++; }
    free(foreign);
    return rc;
}

/* ---- the tensor / array / runtime API under misuse ------------------------------------------------------ */
static const void *wild(fz_src *s, void *dead)
{
    switch (fz_below(s, 3)) {
    case 0: return NULL;
    case 1: return (const void *)(uintptr_t)(0x5000 + 8 * fz_below(s, 64));
    default: return dead;
    }
}

static int api_case(fz_ctx *ctx, fz_src *s, uint64_t *calls)
{
    (void)ctx;
    aclTensor *live[4] = {0};
    void *blocks[4] = {0};
    int rc = 0;
    void *dead = freed_address(512);
    note("api:");
    for (int i = 0; i < 4; i++) {
        int64_t dims[2] = {fz_range(s, 0, 4), fz_range(s, 1, 4)};
        if (aclrtMalloc(&blocks[i], 64, ACL_MEM_MALLOC_HUGE_FIRST) != 0) blocks[i] = NULL;
        live[i] = aclCreateTensor(dims, 2, ACL_FLOAT, NULL, 0, ACL_FORMAT_ND, dims, 2, blocks[i]);
        *calls += 2;
    }
    int steps = (int)fz_range(s, 1, 8);
    for (int k = 0; k < steps; k++) {
        int which = (int)fz_below(s, 4);
        aclTensor *t = live[which];
        int act = (int)fz_below(s, 16);
        note(" a%d", act);
        (*calls)++;
        switch (act) {
        case 0: { /* a descriptor from edge values, through create and init */
            int64_t dims[FZ_MAX_DIMS + 2], strides[FZ_MAX_DIMS + 2], storage[FZ_MAX_DIMS + 2];
            int nd = (int)fz_range(s, 0, FZ_MAX_DIMS + 2);
            for (int d = 0; d < nd; d++) {
                dims[d] = fz_chance(s, 60) ? fz_range(s, 0, 4) : edge(s, 1);
                strides[d] = fz_chance(s, 60) ? fz_range(s, 0, 4) : edge(s, 1);
                storage[d] = fz_chance(s, 60) ? fz_range(s, 0, 4) : edge(s, 1);
            }
            int64_t off = fz_chance(s, 70) ? 0 : edge(s, 0);
            const int64_t *dp = fz_chance(s, 10) ? NULL : dims, *sp = fz_chance(s, 50) ? NULL : strides;
            const int64_t *stp = fz_chance(s, 10) ? NULL : storage;
            aclDataType dt = DTYPES[fz_below(s, sizeof DTYPES / sizeof DTYPES[0])];
            if (fz_chance(s, 50)) {
                aclTensor *n = aclCreateTensor(dp, (uint64_t)nd, dt, sp, off, ACL_FORMAT_ND, stp, (uint64_t)nd,
                                               blocks[which]);
                if (n) { (*calls)++; aclDestroyTensor(n); } else touch_message();
            } else if (aclInitTensor(t, dp, (uint64_t)nd, dt, sp, off, ACL_FORMAT_ND, stp, (uint64_t)nd,
                                     blocks[which]) != 0) {
                touch_message();
            }
            break;
        }
        case 1: case 2: case 3: { /* the shape getters, on live or dead handles; C callers free() the arrays */
            int64_t *arr = NULL;
            uint64_t n = 0;
            const aclTensor *h = fz_chance(s, 70) ? t : (const aclTensor *)wild(s, dead);
            int e = act == 1 ? aclGetViewShape(h, fz_chance(s, 10) ? NULL : &arr, &n)
                  : act == 2 ? aclGetStorageShape(h, &arr, fz_chance(s, 10) ? NULL : &n)
                             : aclGetViewStrides(h, &arr, &n);
            if (e == 0) free(arr); else touch_message();
            break;
        }
        case 4: {
            const aclTensor *h = fz_chance(s, 70) ? t : (const aclTensor *)wild(s, dead);
            int64_t off;
            aclFormat f;
            aclDataType d;
            void *a;
            aclGetViewOffset(h, fz_chance(s, 10) ? NULL : &off);
            aclGetFormat(h, &f);
            aclGetDataType(h, &d);
            aclGetRawTensorAddr(h, &a);
            *calls += 3;
            break;
        }
        case 5: /* destroy, then every later use sees a dead handle */
            if (t) { aclDestroyTensor(t); live[which] = NULL; aclDestroyTensor(t); (*calls)++; dead = t; }
            break;
        case 6: { /* lists: NULL with a size, dead elements, then a list that owns live tensors */
            uint64_t n = (uint64_t)fz_range(s, 0, 4);
            aclTensorList *l = aclCreateTensorList(fz_chance(s, 50) ? NULL : (const aclTensor *const *)live, n);
            if (l) {
                uint64_t sz;
                aclGetTensorListSize(l, &sz);
                aclDestroyTensorList(l); /* it destroyed the tensors it held */
                for (uint64_t j = 0; j < n && j < 4; j++) live[j] = NULL;
                *calls += 2;
            }
            const aclTensor *deadlist[2] = {(const aclTensor *)dead, NULL};
            l = aclCreateTensorList(deadlist, 2);
            (*calls)++;
            if (l) { aclDestroyTensorList(l); (*calls)++; }
            break;
        }
        case 7: { /* arrays from NULL, of every kind, destroyed twice or as the wrong kind */
            int64_t v[3] = {1, 2, 3};
            float fv[3] = {1, 2, 3};
            bool bv[3] = {true, false, true};
            uint64_t n = (uint64_t)fz_range(s, 0, 3);
            aclIntArray *ia = aclCreateIntArray(fz_chance(s, 30) ? NULL : v, n);
            aclFloatArray *fa = aclCreateFloatArray(fz_chance(s, 30) ? NULL : fv, n);
            aclBoolArray *ba = aclCreateBoolArray(fz_chance(s, 30) ? NULL : bv, n);
            uint64_t sz;
            aclGetIntArraySize(ia, &sz);
            aclGetFloatArraySize((const aclFloatArray *)wild(s, dead), &sz);
            if (fz_chance(s, 30)) aclDestroyTensor((const aclTensor *)ia); /* wrong kind: must be refused */
            aclDestroyIntArray(ia);
            aclDestroyFloatArray(fa);
            aclDestroyBoolArray(ba);
            aclDestroyIntArray((const aclIntArray *)wild(s, dead));
            *calls += 9;
            break;
        }
        case 8: { /* scalars */
            double v = 1.5;
            aclScalar *sc = aclCreateScalar(fz_chance(s, 20) ? NULL : &v,
                                            DTYPES[fz_below(s, sizeof DTYPES / sizeof DTYPES[0])]);
            const aclScalar *list[2] = {sc, NULL};
            aclScalarList *sl = aclCreateScalarList(list, fz_chance(s, 50) ? 1 : 0);
            uint64_t n = 0;
            if (sl) aclGetScalarListSize(sl, &n);
            if (sl) aclDestroyScalarList(sl); /* a list owns the scalars it holds */
            if (!sl || n == 0) aclDestroyScalar(sc);
            aclDestroyScalar((const aclScalar *)wild(s, dead));
            *calls += 4;
            break;
        }
        case 9: { /* executor calls on handles that never were executors */
            aclOpExecutor *ex = (aclOpExecutor *)wild(s, dead);
            if (fz_chance(s, 30)) ex = (aclOpExecutor *)t;
            aclSetAclOpExecutorRepeatable(ex);
            aclSetInputTensorAddr(ex, (size_t)fz_range(s, 0, 3), t, blocks[which]);
            aclSetOutputTensorAddr(ex, (size_t)edge(s, 0), t, blocks[which]);
            aclSetDynamicOutputTensorAddr(ex, 0, 0, NULL, NULL);
            aclDestroyAclOpExecutor(ex);
            *calls += 4;
            break;
        }
        case 10: { /* raw addresses */
            void *a = fz_chance(s, 50) ? blocks[which] : (void *)wild(s, dead);
            aclSetRawTensorAddr(fz_chance(s, 80) ? t : (aclTensor *)wild(s, dead), a);
            break;
        }
        case 11: { /* device memory: interior, stale and foreign frees, copies and sets past an end */
            void *b = NULL;
            if (aclrtMalloc(&b, 128, ACL_MEM_MALLOC_HUGE_FIRST) == 0) {
                aclrtFree((char *)b + 64);
                aclrtMemset((char *)b + 64, 128, 0, 128);
                aclrtMemcpy(b, 128, (char *)b + 64, 128, ACL_MEMCPY_DEVICE_TO_DEVICE);
                aclrtMemcpy((char *)b + 100, 64, b, 64, ACL_MEMCPY_DEFAULT);
                aclrtFree(b);
                aclrtFree(b);
                *calls += 6;
            }
            void *m = malloc(16);
            aclrtFree(m);
            free(m);
            size_t fr, tot;
            aclrtGetMemInfo(ACL_HBM_MEM, &fr, &tot);
            *calls += 2;
            break;
        }
        case 12: { /* streams and events: stale and wild handles */
            aclrtStream sx = NULL;
            if (aclrtCreateStream(&sx) == 0) {
                aclrtSynchronizeStream(sx);
                aclrtDestroyStream(sx);
                aclrtSynchronizeStream(sx);
                aclrtDestroyStream(sx);
                *calls += 4;
            }
            aclrtSynchronizeStream(g_dead_stream);
            aclrtSynchronizeStream((aclrtStream)wild(s, dead));
            aclrtEvent ev = NULL;
            if (aclrtCreateEvent(&ev) == 0) {
                aclrtRecordEvent(ev, ctx->stream);
                aclrtSynchronizeEvent(ev);
                aclrtDestroyEvent(ev);
                aclrtSynchronizeEvent(ev);
                aclrtDestroyEvent(ev);
                *calls += 5;
            }
            aclrtStreamWaitEvent(ctx->stream, (aclrtEvent)wild(s, dead));
            *calls += 3;
            break;
        }
        case 13: /* phase 2 of a random operator with a handle that is no executor */
        {
            int n;
            const fz_op *ops = fz_op_table(&n);
            uint64_t w = fz_u64(s);
            ops[fz_below(s, (uint64_t)n)].phase2(blocks[which], w, (aclOpExecutor *)wild(s, dead), ctx->stream);
            break;
        }
        case 14: /* a non-contiguous view created over a live block and used by a getter */
        {
            int64_t dims[2] = {2, 3}, strides[2] = {1, 2}, storage[1] = {6};
            aclTensor *n = aclCreateTensor(dims, 2, ACL_FLOAT, strides, fz_range(s, 0, 3), ACL_FORMAT_ND, storage, 1,
                                           blocks[which]);
            int64_t *arr = NULL;
            uint64_t nn;
            if (n && aclGetViewStrides(n, &arr, &nn) == 0) free(arr);
            aclDestroyTensor(n);
            *calls += 2;
            break;
        }
        default:
            touch_message();
            break;
        }
    }
    for (int i = 0; i < 4; i++) {
        if (live[i]) aclDestroyTensor(live[i]);
        if (blocks[i]) aclrtFree(blocks[i]);
        *calls += 2;
    }
    return rc;
}

/* ---- one case ------------------------------------------------------------------------------------------ */
int fz_setup(fz_ctx *ctx)
{
    int e = aclInit(NULL);
    if (e && e != ACL_ERROR_REPEAT_INITIALIZE) return e;
    if ((e = aclrtSetDevice(0)) != 0) return e;
    if ((e = aclrtCreateStream(&ctx->stream)) != 0) return e;
    if (aclrtCreateStream(&g_dead_stream) == 0) aclrtDestroyStream(g_dead_stream);
    return 0;
}

void fz_teardown(fz_ctx *ctx)
{
    aclrtDestroyStream(ctx->stream);
    aclrtResetDevice(0);
    aclFinalize();
}

int fz_one(fz_ctx *ctx, fz_src *s)
{
    int nops;
    fz_op_table(&nops);
    desc_reset();
    if (ctx->label[0]) note("[%s] ", ctx->label);
    ctx->stats.cases++;
    if (ctx->mutate && fz_chance(s, 12)) { /* the tensor / executor / runtime API on its own */
        ctx->stats.api_cases++;
        ctx->last_op = -1;
        return api_case(ctx, s, &ctx->stats.calls);
    }
    static __thread fz_run r; /* large: keep it off the stack */
    int op = ctx->op >= 0 ? ctx->op : (int)fz_below(s, (uint64_t)nops);
    if (ctx->templated_only) /* the next operator that has a template (there is at least one) */
        for (int k = 0; k < nops && !fz_has_template(fz_ops[op].api); k++) op = (op + 1) % nops;
    int mutations = ctx->mutate && fz_chance(s, 80); /* some cases stay valid, to reach the kernels */
    ctx->last_op = op;
    note("%s:", fz_ops[op].api);
    build_case(&r.c, op, s, mutations);
    r.calls = 0;
    materialise(&r);
    uint64_t wss = 0;
    aclOpExecutor *ex = NULL;
    r.calls++;
    int null_ws = ctx->mutate && fz_chance(s, 3), null_ex = ctx->mutate && fz_chance(s, 3);
    int rc = r.c.def->phase1(r.args, null_ws ? NULL : &wss, null_ex ? NULL : &ex);
    if (op < 64) ctx->stats.per_op_cases[op]++;
    if (rc == 0 && ex) {
        ctx->stats.phase1_ok++;
        if (op < 64) ctx->stats.per_op_phase1_ok[op]++;
        int scenario = ctx->mutate && fz_chance(s, 40) ? (int)fz_range(s, 1, EX_COUNT - 1) : EX_NORMAL;
        rc = run_scenario(ctx, &r, s, ex, wss, scenario);
        if (rc == 0) { ctx->stats.phase2_ok++; if (op < 64) ctx->stats.per_op_phase2_ok[op]++; }
    } else if (rc) {
        touch_message();
    }
    if (ctx->verbose) fprintf(stderr, "%s -> %d\n", g_desc, rc);
    release(&r);
    ctx->stats.calls += r.calls;
    return rc;
}

/* ---- valid runs for the thread and leak drivers ----------------------------------------------------------- */
int fz_run_valid(int op, uint64_t seed, aclrtStream stream, int repeatable, unsigned char **out, size_t *out_len)
{
    fz_src s;
    fz_run *r = (fz_run *)calloc(1, sizeof *r);
    if (!r) return -1;
    fz_src_seed(&s, seed);
    build_case(&r->c, op, &s, 0);
    materialise(r);
    uint64_t wss = 0;
    aclOpExecutor *ex = NULL;
    void *ws = NULL;
    int rc = r->c.def->phase1(r->args, &wss, &ex);
    if (rc == 0 && wss && (ws = dev_alloc(r, wss)) == NULL) rc = -2;
    if (rc == 0) {
        if (repeatable && (rc = aclSetAclOpExecutorRepeatable(ex)) == 0) {
            /* rebind every output to the address it already has, then run twice: same result as once. An
             * operator may keep no slot for an output it will not write (status ignored: the results are
             * compared by the callers) */
            int oi = 0;
            for (int i = 0; i < r->c.nparams; i++)
                if (r->c.def->params[i].kind == FZ_TENSOR && r->c.def->params[i].is_output) {
                    if (r->l[i].tensor) (void)aclSetOutputTensorAddr(ex, (size_t)oi, r->l[i].tensor, r->l[i].data);
                    oi++;
                }
            if (rc == 0) rc = r->c.def->phase2(ws, wss, ex, stream);
            if (rc == 0) rc = r->c.def->phase2(ws, wss, ex, stream);
            int d = aclDestroyAclOpExecutor(ex);
            if (rc == 0) rc = d;
        } else {
            rc = r->c.def->phase2(ws, wss, ex, stream);
        }
    } else if (ex) {
        r->c.def->phase2(ws, wss, ex, stream);
    }
    if (rc == 0) rc = aclrtSynchronizeStream(stream);
    if (out) {
        size_t total = 0;
        for (int i = 0; i < r->c.nparams; i++)
            if (r->c.def->params[i].is_output) total += r->l[i].bytes;
        *out = (unsigned char *)malloc(total ? total : 1);
        *out_len = total;
        size_t at = 0;
        for (int i = 0; i < r->c.nparams && *out; i++)
            if (r->c.def->params[i].is_output && r->l[i].bytes) {
                memcpy(*out + at, r->l[i].data, r->l[i].bytes);
                at += r->l[i].bytes;
            }
    }
    if (ws) aclrtFree(ws);
    release(r);
    free(r);
    return rc;
}
