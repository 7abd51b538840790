/* Shared scaffolding of the regression reproducers of issue 12 (one program per class). Each program makes the
 * calls the issue found unsafe and checks that they return an error status (or, where the issue allows either,
 * that they are simply safe); it prints one line per check and exits non-zero if a check failed. A sanitizer
 * report or a crash is a failure too. Built by native/fuzz/build.py, run by .ci/safety and tests/test_fuzz*.py. */
#ifndef REPRO_H_
#define REPRO_H_
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "acl/acl.h"
#include "aclnn/aclnn_base.h"

static int g_failed, g_checks;
static aclrtStream g_stream;

static void repro_setup(void)
{
    if (aclInit(NULL) != 0 || aclrtSetDevice(0) != 0 || aclrtCreateStream(&g_stream) != 0) {
        fprintf(stderr, "setup failed\n");
        exit(2);
    }
}

static int repro_finish(const char *name)
{
    aclrtDestroyStream(g_stream);
    aclrtResetDevice(0);
    aclFinalize();
    printf("%s: %d of %d checks failed\n", name, g_failed, g_checks);
    return g_failed ? 1 : 0;
}

static __attribute__((unused)) const char *msg(void)
{
    const char *m = aclGetRecentErrMsg();
    return m ? m : "";
}

/* the status must be an error (any of them: which one is documented with each check) */
static __attribute__((unused)) void expect_error(int status, const char *what)
{
    g_checks++;
    if (status == 0) {
        g_failed++;
        printf("FAIL %s: returned 0, expected an error status\n", what);
    } else {
        printf("ok   %s: %d %s\n", what, status, msg());
    }
}

/* the status must be one of two codes */
static __attribute__((unused)) void expect_status(int status, int a, int b, const char *what)
{
    g_checks++;
    if (status != a && status != b) {
        g_failed++;
        printf("FAIL %s: returned %d, expected %d or %d (%s)\n", what, status, a, b, msg());
    } else {
        printf("ok   %s: %d %s\n", what, status, msg());
    }
}

static __attribute__((unused)) void expect_true(int cond, const char *what)
{
    g_checks++;
    if (!cond) { g_failed++; printf("FAIL %s\n", what); }
    else printf("ok   %s\n", what);
}

static __attribute__((unused)) int64_t elem_size(aclDataType dt)
{
    return dt == ACL_INT64 || dt == ACL_DOUBLE ? 8 : dt == ACL_FLOAT16 || dt == ACL_BF16 ? 2 : dt == ACL_INT8 ? 1 : 4;
}

/* a contiguous tensor over a fresh device block of exactly its bytes (at least 1), zero-filled */
static __attribute__((unused)) aclTensor *dev_tensor(aclDataType dt, int ndim, const int64_t *dims, void **block)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    size_t bytes = (size_t)(n * elem_size(dt));
    if (aclrtMalloc(block, bytes ? bytes : 1, ACL_MEM_MALLOC_HUGE_FIRST) != 0) { fprintf(stderr, "malloc\n"); exit(2); }
    memset(*block, 0, bytes ? bytes : 1);
    aclTensor *t = aclCreateTensor(dims, (uint64_t)ndim, dt, NULL, 0, ACL_FORMAT_ND, dims, (uint64_t)ndim, *block);
    if (!t) { fprintf(stderr, "aclCreateTensor: %s\n", msg()); exit(2); }
    return t;
}

/* phase 2 with a workspace of exactly the size phase 1 asked for */
typedef aclnnStatus (*phase2_fn)(void *, uint64_t, aclOpExecutor *, aclrtStream);
static __attribute__((unused)) int run_phase2(phase2_fn fn, uint64_t ws, aclOpExecutor *ex)
{
    void *w = NULL;
    if (ws && aclrtMalloc(&w, ws, ACL_MEM_MALLOC_HUGE_FIRST) != 0) return -1;
    int rc = fn(w, ws, ex, g_stream);
    if (rc == 0) rc = aclrtSynchronizeStream(g_stream);
    if (w) aclrtFree(w);
    return rc;
}
#endif
