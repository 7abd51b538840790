/* The seeded fuzz driver (plain C; no libFuzzer needed). Deterministic: case i of seed S is the same on every
 * run, so a finding is replayed with `-s S -f i -n 1 -v`. Also replays libFuzzer inputs (corpus files), runs
 * valid cases only (--valid, with --require-kernels to check that every operator's template reaches its
 * kernel), writes the seed corpus, and runs the leak loop (--leak N full create/plan/run/destroy cycles).
 * Exit 0 when every case returned; a finding aborts (sanitizer report, signal) or exits 124 (hang). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fuzz.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: fuzz_driver [-s SEED] [-n CASES] [-f FIRST] [-o OPERATOR] [-t SECONDS] [-v] [--valid]\n"
            "                   [--stats] [--require-kernels] [--leak CYCLES] [--write-corpus DIR] [FILE...]\n"
            "  -n CASES    fuzz cases to run (default 1000); each makes tens of C API calls\n"
            "  -s SEED     seed (default 1); case i uses its own stream derived from (SEED, i)\n"
            "  -f FIRST    index of the first case (replay one case: -f i -n 1 -v)\n"
            "  -o OP       only this operator (e.g. aclnnMoeGatingTopK)\n"
            "  -t SECONDS  per-case time limit before it counts as a hang (default 60)\n"
            "  --valid     no mutations (every case of an operator with a template must succeed)\n"
            "  --templated only operators with a template in fuzz_templates.c\n"
            "  FILE...     replay libFuzzer inputs instead of generated cases\n");
}

static uint64_t case_seed(uint64_t seed, uint64_t i) { return seed * 0x9e3779b97f4a7c15ull ^ (i + 1) * 0xd1b54a32d192ed03ull; }

static int replay_file(fz_ctx *ctx, const char *path, unsigned timeout)
{
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "fuzz_driver: %s: %s\n", path, strerror(errno)); return 2; }
    static uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    fz_src s;
    fz_src_bytes(&s, buf, n);
    snprintf(ctx->label, sizeof ctx->label, "file %.50s", path);
    alarm(timeout);
    int rc = fz_one(ctx, &s);
    alarm(0);
    if (ctx->verbose) fprintf(stderr, "%s: %d\n", path, rc);
    return 0;
}

static int write_corpus(const char *dir)
{
    int nops;
    const fz_op *ops = fz_op_table(&nops);
    char path[4096];
    uint8_t buf[96];
    for (int i = 0; i < nops; i++) { /* one valid (all-zero decisions) case per operator */
        memset(buf, 0, sizeof buf);
        buf[1] = (uint8_t)i;
        snprintf(path, sizeof path, "%s/valid-%s", dir, ops[i].api);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(buf, 1, 32, f) != 32) { perror(path); return 2; }
        fclose(f);
    }
    fz_src s;
    fz_src_seed(&s, 12);
    for (int k = 0; k < 40; k++) { /* random decision strings: mutated cases and API sequences */
        for (size_t j = 0; j < sizeof buf; j++) buf[j] = (uint8_t)fz_u64(&s);
        snprintf(path, sizeof path, "%s/random-%02d", dir, k);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(buf, 1, sizeof buf, f) != sizeof buf) { perror(path); return 2; }
        fclose(f);
    }
    return 0;
}

/* ASan's count of live heap bytes (0 without ASan) */
size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

static size_t heap_bytes(void) { return __sanitizer_get_current_allocated_bytes ? __sanitizer_get_current_allocated_bytes() : 0; }

/* Full create / plan / run / destroy cycles over every operator, half of them on repeatable executors, each
 * followed by one mutated case (error paths must release what they made too). LSan (ASan detect_leaks=1)
 * reports what is unreachable at exit; what stays reachable but grows (a table that never shrinks, a pool that
 * keeps every block) is caught here: after a warm-up, ASan's count of live heap bytes must not grow. */
static int leak_loop(fz_ctx *ctx, long cycles, uint64_t seed)
{
    int nops;
    const fz_op *ops = fz_op_table(&nops);
    size_t heap0 = 0;
    long warm = 4L * nops < cycles / 2 ? 4L * nops : cycles / 2;
    for (long i = 0; i < cycles; i++) {
        if (i == warm) heap0 = heap_bytes();
        /* valid cycles need a template; the mutated case below covers every operator */
        int rc = !fz_has_template(ops[i % nops].api) ? 0 : fz_run_valid((int)(i % nops), case_seed(seed, (uint64_t)i), ctx->stream, (int)(i / nops % 2), NULL,
                              NULL);
        if (rc) {
            fprintf(stderr, "fuzz_driver: leak cycle %ld (%s) failed with %d: %s\n", i, ops[i % nops].api, rc,
                    aclGetRecentErrMsg());
            return 1;
        }
        fz_src s;
        fz_src_seed(&s, case_seed(seed ^ 0x5eed, (uint64_t)i));
        snprintf(ctx->label, sizeof ctx->label, "leak seed %llu case %ld", (unsigned long long)seed, i);
        fz_one(ctx, &s);
    }
    size_t heap1 = heap_bytes();
    printf("fuzz_driver: %ld full cycles and %ld %s cases; live heap %zu -> %zu bytes after the warm-up\n", cycles,
           cycles, ctx->mutate ? "mutated" : "valid", heap0, heap1);
    if (heap1 > heap0 + (16u << 10)) {
        fprintf(stderr, "fuzz_driver: leak: live memory grew over %ld cycles\n", cycles - warm);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t seed = 1, first = 0, cases = 1000;
    unsigned timeout = 60;
    long leak = -1;
    int stats = 0, require = 0, nfiles = 0;
    const char *corpus_dir = NULL, *only = NULL;
    char **files = (char **)calloc((size_t)argc, sizeof *files);
    fz_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.mutate = 1;
    ctx.op = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "-s") && more) seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "-n") && more) cases = (uint64_t)strtod(argv[++i], NULL);
        else if (!strcmp(a, "-f") && more) first = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(a, "-o") && more) only = argv[++i];
        else if (!strcmp(a, "-t") && more) timeout = (unsigned)strtoul(argv[++i], NULL, 0);
        else if (!strcmp(a, "-v")) ctx.verbose = 1;
        else if (!strcmp(a, "--valid")) ctx.mutate = 0;
        else if (!strcmp(a, "--stats")) stats = 1;
        else if (!strcmp(a, "--templated")) ctx.templated_only = 1;
        else if (!strcmp(a, "--require-kernels")) require = 1;
        else if (!strcmp(a, "--leak") && more) leak = strtol(argv[++i], NULL, 0);
        else if (!strcmp(a, "--write-corpus") && more) corpus_dir = argv[++i];
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        else if (a[0] == '-') { usage(); return 2; }
        else files[nfiles++] = argv[i];
    }
    if (corpus_dir) return write_corpus(corpus_dir);
    fz_install_reporters();
    if (only && (ctx.op = fz_op_find(only)) < 0) { fprintf(stderr, "fuzz_driver: no operator %s\n", only); return 2; }
    int e = fz_setup(&ctx);
    if (e) { fprintf(stderr, "fuzz_driver: setup failed with %d\n", e); return 2; }
    int rc = 0;
    if (leak >= 0) {
        rc = leak_loop(&ctx, leak, seed);
    } else if (nfiles) {
        for (int i = 0; i < nfiles && !rc; i++) rc = replay_file(&ctx, files[i], timeout);
        printf("fuzz_driver: replayed %d inputs (%llu C API calls)\n", nfiles, (unsigned long long)ctx.stats.calls);
    } else {
        for (uint64_t i = first; i < first + cases; i++) {
            fz_src s;
            fz_src_seed(&s, case_seed(seed, i));
            snprintf(ctx.label, sizeof ctx.label, "seed %llu case %llu", (unsigned long long)seed,
                     (unsigned long long)i);
            alarm(timeout);
            int st = fz_one(&ctx, &s);
            alarm(0);
            /* valid cases must pass, for the operators that have a template */
            if (!ctx.mutate && st && ctx.last_op >= 0 && fz_has_template(fz_op_table(&(int){0})[ctx.last_op].api)) {
                fprintf(stderr, "fuzz_driver: valid case %llu failed with %d: %s\n  %s\n", (unsigned long long)i, st,
                        aclGetRecentErrMsg(), fz_describe());
                rc = 1;
            }
        }
        printf("fuzz_driver: seed %llu, %llu cases (%llu API sequences), %llu C API calls, phase 1 ok %llu, "
               "phase 2 ok %llu\n", (unsigned long long)seed, (unsigned long long)ctx.stats.cases,
               (unsigned long long)ctx.stats.api_cases, (unsigned long long)ctx.stats.calls,
               (unsigned long long)ctx.stats.phase1_ok, (unsigned long long)ctx.stats.phase2_ok);
    }
    int nops;
    const fz_op *ops = fz_op_table(&nops);
    for (int i = 0; i < nops && i < 64 && (stats || require) && leak < 0; i++) {
        int tpl = fz_has_template(ops[i].api);
        if (stats)
            printf("  %-40s cases %6llu  phase 1 ok %6llu  phase 2 ok %6llu%s\n", ops[i].api,
                   (unsigned long long)ctx.stats.per_op_cases[i], (unsigned long long)ctx.stats.per_op_phase1_ok[i],
                   (unsigned long long)ctx.stats.per_op_phase2_ok[i], tpl ? "" : "  (no template: generic tensors)");
        if (require && tpl && ctx.stats.per_op_cases[i] && !ctx.stats.per_op_phase2_ok[i]) {
            fprintf(stderr, "fuzz_driver: %s never reached its kernel (its template is not a valid call)\n",
                    ops[i].api);
            rc = 1;
        }
    }
    fz_teardown(&ctx);
    free(files);
    return rc;
}
