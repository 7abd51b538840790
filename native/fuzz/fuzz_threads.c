/* The thread driver: every operator's valid cases run by 8 threads at once, first each on its own stream, then
 * all on one shared stream (and a mix with the default stream), and every result is compared byte for byte with
 * the same case run by a single thread afterwards (the threads start on a cold process). Built and run under
 * TSan by .ci/safety; any data race, any differing byte, any failed call is a finding (non-zero exit).
 *   usage: fuzz_threads [-j THREADS] [-r ROUNDS] [-s SEED] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"

typedef struct {
    unsigned char *bytes;
    size_t len;
} result;

static int g_nops, g_rounds = 3, g_nthreads = 8;
static uint64_t g_seed = 7;
static result *g_ref; /* [round][op] */
static aclrtStream g_shared;
static int g_mode; /* 0: own streams, 1: one shared stream, 2: shared and default stream mixed */

static uint64_t seed_of(int round, int op) { return g_seed * 1000003ull + (uint64_t)round * 131ull + (uint64_t)op; }

typedef struct {
    int id;
    int failures;
    result *got; /* [round][op] of this thread in this mode */
} worker;

static void *work(void *arg)
{
    worker *w = (worker *)arg;
    aclrtStream own = NULL;
    if (aclrtSetDevice(0) != 0) { w->failures++; return NULL; }
    if (g_mode == 0 && aclrtCreateStream(&own) != 0) { w->failures++; return NULL; }
    for (int round = 0; round < g_rounds; round++)
        for (int k = 0; k < g_nops; k++) {
            int op = (k + w->id) % g_nops; /* threads start on different operators */
            if (!fz_has_template(fz_op_table(&(int){0})[op].api)) continue; /* valid runs need a template */
            aclrtStream st = g_mode == 0 ? own : (g_mode == 2 && (w->id + k) % 2) ? NULL : g_shared;
            result *r = &w->got[round * g_nops + op];
            int rc = fz_run_valid(op, seed_of(round, op), st, (w->id + round) % 2, &r->bytes, &r->len);
            if (rc != 0) {
                fprintf(stderr, "fuzz_threads: mode %d thread %d round %d op %d: status %d\n", g_mode, w->id, round,
                        op, rc);
                w->failures++;
            }
        }
    if (own) aclrtDestroyStream(own);
    return NULL;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-j")) g_nthreads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-r")) g_rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-s")) g_seed = strtoull(argv[i + 1], NULL, 0);
    }
    if (g_nthreads < 1 || g_nthreads > 256 || g_rounds < 1) return 2;
    fz_install_reporters();
    fz_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    if (fz_setup(&ctx) != 0) { fprintf(stderr, "fuzz_threads: setup failed\n"); return 2; }
    fz_op_table(&g_nops);
    const int per = g_rounds * g_nops;
    result *got = (result *)calloc((size_t)(3 * g_nthreads * per), sizeof *got);
    int failures = 0;
    /* the threads run first, on a cold process (lazy initialisation races included), the reference after */
    if (!got || aclrtCreateStream(&g_shared) != 0) return 2;
    for (g_mode = 0; g_mode < 3; g_mode++) {
        pthread_t th[256];
        worker w[256];
        for (int i = 0; i < g_nthreads; i++) {
            w[i].id = i;
            w[i].failures = 0;
            w[i].got = &got[(g_mode * g_nthreads + i) * per];
            if (pthread_create(&th[i], NULL, work, &w[i]) != 0) return 2;
        }
        for (int i = 0; i < g_nthreads; i++) {
            pthread_join(th[i], NULL);
            failures += w[i].failures;
        }
    }
    g_ref = (result *)calloc((size_t)per, sizeof *g_ref);
    for (int round = 0; round < g_rounds; round++) /* the single-thread reference */
        for (int op = 0; op < g_nops; op++) {
            result *r = &g_ref[round * g_nops + op];
            if (!fz_has_template(fz_op_table(&(int){0})[op].api)) continue;
            int rc = fz_run_valid(op, seed_of(round, op), ctx.stream, 0, &r->bytes, &r->len);
            if (rc) { fprintf(stderr, "fuzz_threads: reference op %d failed with %d\n", op, rc); return 1; }
        }
    int mismatches = 0;
    for (int i = 0; i < 3 * g_nthreads * per; i++) {
        const result *a = &got[i], *ref = &g_ref[i % per];
        if (a->len != ref->len || (a->len && memcmp(a->bytes, ref->bytes, a->len) != 0)) {
            fprintf(stderr, "fuzz_threads: mode %d thread %d round %d op %d: %zu bytes differ from the single-thread "
                    "run (%zu bytes)\n", i / (g_nthreads * per), i / per % g_nthreads, i % per / g_nops,
                    i % g_nops, a->len, ref->len);
            mismatches++;
        }
        free(got[i].bytes);
    }
    free(got);
    failures += mismatches;
    aclrtDestroyStream(g_shared);
    for (int i = 0; i < g_rounds * g_nops; i++) free(g_ref[i].bytes);
    free(g_ref);
    fz_teardown(&ctx);
    printf("fuzz_threads: %d threads x %d rounds x %d operators x 3 stream modes: %d mismatches\n", g_nthreads,
           g_rounds, g_nops, failures);
    return failures ? 1 : 0;
}
