/*
 * The structure-aware fuzzer of the C ABI (native/fuzz/README.md). One engine, two front ends:
 *   fuzz_driver.c     seeded random driver (plain C, deterministic from a seed and a case count)
 *   fuzz_libfuzzer.c  clang libFuzzer target (the input bytes drive the same decisions)
 * and two users of its valid cases: fuzz_threads.c (8 threads, TSan) and the leak loop of fuzz_driver.c.
 *
 * A "case" is one operator call built from a valid template (fuzz_templates.c) and then mutated: descriptors,
 * data pointers, handles, attributes, index values, workspace and executor use. Every C call must return a
 * status; a sanitizer report, a crash or a hang is the only finding (a status 0 for an invalid input is not).
 */
#ifndef FUZZ_H_
#define FUZZ_H_
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "acl/acl.h"
#include "aclnn/aclnn_base.h"

#define FZ_MAX_PARAMS 24
#define FZ_MAX_DIMS 8  /* the host runtime's limit; the fuzzer also tries more */

enum { FZ_TENSOR, FZ_INTARRAY, FZ_INT, FZ_BOOL, FZ_DOUBLE };

typedef struct {
    const char *name;
    int kind;
    int is_output;
    int optional;
} fz_param;

typedef union {
    const aclTensor *t;
    const aclIntArray *ia;
    int64_t i;
    bool b;
    double d;
} fz_arg;

typedef aclnnStatus (*fz_phase1_fn)(const fz_arg *args, uint64_t *workspaceSize, aclOpExecutor **executor);
typedef aclnnStatus (*fz_phase2_fn)(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                    aclrtStream stream);

typedef struct {
    const char *api;
    const fz_param *params;
    int nparams;
    fz_phase1_fn phase1;
    fz_phase2_fn phase2;
} fz_op;

/* ---- decisions: from the fuzzer's input bytes, or from a seeded generator -------------------------------- */
typedef struct {
    const uint8_t *data; /* libFuzzer input (NULL: generator) */
    size_t size, pos;
    uint64_t state;      /* generator state */
} fz_src;

void fz_src_seed(fz_src *s, uint64_t seed);
void fz_src_bytes(fz_src *s, const uint8_t *data, size_t size);
uint64_t fz_u64(fz_src *s);
uint64_t fz_below(fz_src *s, uint64_t n); /* uniform in [0, n), n >= 1 */
int fz_chance(fz_src *s, unsigned percent);
int64_t fz_range(fz_src *s, int64_t lo, int64_t hi); /* [lo, hi] */

/* ---- a case: what each parameter will be ----------------------------------------------------------------- */
enum { FILL_FLOAT, FILL_INDEX, FILL_SORTED, FILL_PERM, FILL_COUNTS, FILL_ZERO };
enum { DATA_OK, DATA_NULL, DATA_FREED, DATA_FOREIGN, DATA_INTERIOR, DATA_PAST_END, DATA_ALIAS, DATA_MISALIGNED,
       DATA_SHORT, DATA_UNMAPPED, DATA_COUNT };
enum { HANDLE_OK, HANDLE_NULL, HANDLE_DESTROYED, HANDLE_WILD_UNMAPPED, HANDLE_WILD_FREED, HANDLE_WRONG_TYPE,
       HANDLE_COUNT };

typedef struct {
    int present;          /* 0: NULL (an absent optional) */
    int kind;
    /* tensors */
    aclDataType dtype;
    aclFormat format;
    int ndim;
    int64_t dims[FZ_MAX_DIMS + 2];
    int explicit_strides;
    int64_t strides[FZ_MAX_DIMS + 2];
    int64_t offset;
    int explicit_storage;
    int storage_ndim;
    int64_t storage[FZ_MAX_DIMS + 2];
    int fill;
    int64_t lo, hi;       /* FILL_INDEX / FILL_SORTED: values in [lo, hi); FILL_COUNTS: hi = their sum */
    int bad_values;       /* index values out of range / NaN planted */
    int data_mode, alias_of, handle_mode;
    /* int arrays */
    int64_t n;
    int64_t v[FZ_MAX_DIMS + 2];
    /* scalars */
    int64_t i;
    bool b;
    double d;
} fz_pspec;

typedef struct {
    int op;
    int nparams;
    const fz_op *def;
    fz_pspec p[FZ_MAX_PARAMS];
    uint64_t fill_seed;
} fz_case;

/* ---- templates (fuzz_templates.c): set a parameter by its name in the header --------------------------- */
void fz_tensor(fz_case *c, const char *name, aclDataType dt, int ndim, const int64_t *dims, int fill, int64_t lo,
               int64_t hi);
void fz_absent(fz_case *c, const char *name);
void fz_int(fz_case *c, const char *name, int64_t v);
void fz_bool(fz_case *c, const char *name, bool v);
void fz_double(fz_case *c, const char *name, double v);
void fz_intarray(fz_case *c, const char *name, int n, const int64_t *v);
fz_pspec *fz_find(fz_case *c, const char *name);
/* fills c with a valid call of c->def (random small sizes from s); 0 when no template knows the operator */
int fz_template(fz_case *c, fz_src *s);
int fz_has_template(const char *api);

/* ---- the engine (fuzz_core.c) ---------------------------------------------------------------------------- */
const fz_op *fz_op_table(int *n);
int fz_op_find(const char *api); /* index or -1 */

typedef struct {
    uint64_t cases, calls, phase1_ok, phase2_ok, api_cases;
    uint64_t per_op_cases[64], per_op_phase1_ok[64], per_op_phase2_ok[64];
} fz_stats;

typedef struct {
    aclrtStream stream;       /* shared stream of the run (NULL: default) */
    int mutate;               /* 0: valid cases only (threads, leak loop) */
    int verbose;
    int op;                   /* -1: any */
    int templated_only;       /* only operators with a template in fuzz_templates.c */
    int last_op;              /* operator of the last case (-1: an API sequence) */
    char label[64];           /* printed first in the description of a case, e.g. "seed 1 case 42" */
    fz_stats stats;
} fz_ctx;

int fz_setup(fz_ctx *ctx);  /* aclInit, device, a stream; 0 or a status */
void fz_teardown(fz_ctx *ctx);
/* one fuzz case from s: an operator call (mutated when ctx->mutate) or a sequence of tensor/executor API
 * misuse; returns the phase-2 status (or phase-1 / API status) */
int fz_one(fz_ctx *ctx, fz_src *s);

/* a valid case of operator `op` run on `stream` with its outputs copied to *out (malloc'd, *out_len bytes);
 * returns the first non-zero status or 0 (fuzz_threads.c, the leak loop) */
int fz_run_valid(int op, uint64_t seed, aclrtStream stream, int repeatable, unsigned char **out, size_t *out_len);

/* the description of the running case, printed on a sanitizer report, a crash or a hang */
const char *fz_describe(void);
void fz_install_reporters(void);

#endif
