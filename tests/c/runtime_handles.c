/* Regression tests (issue 12 items 1-5, 7, 8) of the host runtime's C ABI under hostile input: every case must
 * return the documented status (in the comment next to it) and never crash; built with `aclnn-moe config`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "acl/acl.h"
#include "aclnn/acl_meta.h"
#include "aclnnop/aclnn_moe_compute_expert_tokens.h"
#include "aclnnop/aclnn_moe_gating_top_k.h"

static int failures;
#define EXPECT(cond)                                                                                     \
    do {                                                                                                 \
        if (!(cond)) {                                                                                   \
            const char *m_ = aclGetRecentErrMsg();                                                       \
            fprintf(stderr, "%s:%d: FAILED %s (last message: %s)\n", __FILE__, __LINE__, #cond, m_ ? m_ : ""); \
            failures++;                                                                                  \
        }                                                                                                \
    } while (0)

static void *dev_alloc(size_t n)
{
    void *p = NULL;
    if (aclrtMalloc(&p, n, ACL_MEM_MALLOC_HUGE_FIRST) != ACL_SUCCESS) abort();
    memset(p, 0, n);
    return p;
}

static aclTensor *t1d(int64_t n, aclDataType dt, void *data)
{
    return aclCreateTensor(&n, 1, dt, NULL, 0, ACL_FORMAT_ND, &n, 1, data);
}

/* item 1: destroyed and wild handles get a status at every entry point */
static void destroyed_and_wild_handles(aclrtStream stream)
{
    int32_t *src = (int32_t *)dev_alloc(16), *out = (int32_t *)dev_alloc(16);
    aclTensor *t = t1d(4, ACL_INT32, src), *o = t1d(4, ACL_INT32, out);
    EXPECT(aclDestroyTensor(t) == ACLNN_SUCCESS);
    void *wild = (void *)(uintptr_t)0xdeadbeef000ull;
    int64_t *dims = NULL;
    uint64_t n = 0, size = 0;
    aclDataType dt;
    EXPECT(aclDestroyTensor(t) == ACLNN_ERR_PARAM_INVALID);                     /* double destroy: 161002 */
    EXPECT(aclGetViewShape(t, &dims, &n) == ACLNN_ERR_PARAM_INVALID);           /* destroyed: 161002 */
    EXPECT(aclGetDataType((aclTensor *)wild, &dt) == ACLNN_ERR_PARAM_NULLPTR);  /* wild: 161001 */
    EXPECT(aclSetRawTensorAddr((aclTensor *)wild, src) == ACLNN_ERR_PARAM_NULLPTR);
    EXPECT(aclInitTensor((aclTensor *)wild, NULL, 0, ACL_INT32, NULL, 0, ACL_FORMAT_ND, NULL, 0, NULL) ==
           ACLNN_ERR_PARAM_NULLPTR);
    uint64_t ws = 0;
    aclOpExecutor *ex = NULL;
    /* (phase 1 with a destroyed tensor is the operators' own liveness check, acl_host_tensor_live: tested there) */
    aclIntArray *arr = aclCreateIntArray((const int64_t[]){1, 2}, 2);
    EXPECT(aclDestroyIntArray(arr) == ACLNN_SUCCESS);
    EXPECT(aclDestroyIntArray(arr) == ACLNN_ERR_PARAM_INVALID);                 /* 161002 */
    EXPECT(aclGetIntArraySize(arr, &size) == ACLNN_ERR_PARAM_INVALID);          /* 161002 */
    EXPECT(aclGetIntArraySize((aclIntArray *)wild, &size) == ACLNN_ERR_PARAM_INVALID);
    float one = 1.0f;
    aclScalar *sc = aclCreateScalar(&one, ACL_FLOAT);
    EXPECT(aclDestroyScalar(sc) == ACLNN_SUCCESS && aclDestroyScalar(sc) == ACLNN_ERR_PARAM_INVALID);
    EXPECT(aclDestroyTensorList((aclTensorList *)wild) == ACLNN_ERR_PARAM_INVALID);
    EXPECT(aclDestroyScalarList((aclScalarList *)wild) == ACLNN_ERR_PARAM_INVALID);
    EXPECT(aclDestroyFloatArray((aclFloatArray *)wild) == ACLNN_ERR_PARAM_INVALID);
    /* a list takes only live elements */
    const aclTensor *dead[1] = {t};
    EXPECT(aclCreateTensorList(dead, 1) == NULL);
    /* executors: consumed, destroyed, wild -> 561103 */
    aclTensor *s2 = t1d(4, ACL_INT32, src);
    EXPECT(aclnnMoeComputeExpertTokensGetWorkspaceSize(s2, 4, o, &ws, &ex) == ACLNN_SUCCESS);
    EXPECT(aclnnMoeComputeExpertTokens(NULL, 0, ex, stream) == ACLNN_SUCCESS);
    EXPECT(aclnnMoeComputeExpertTokens(NULL, 0, ex, stream) == ACLNN_ERR_INNER_NULLPTR);
    EXPECT(aclnnMoeComputeExpertTokens(NULL, 0, (aclOpExecutor *)wild, stream) == ACLNN_ERR_INNER_NULLPTR);
    EXPECT(aclDestroyAclOpExecutor(ex) == ACLNN_ERR_INNER_NULLPTR);
    EXPECT(aclSetAclOpExecutorRepeatable((aclOpExecutor *)wild) == ACLNN_ERR_INNER_NULLPTR);
    EXPECT(aclSetInputTensorAddr((aclOpExecutor *)wild, 0, s2, src) == ACLNN_ERR_INNER_NULLPTR);
    EXPECT(aclSetInputTensorAddr((aclOpExecutor *)wild, 0, (aclTensor *)wild, src) == ACLNN_ERR_INNER_NULLPTR);
    /* streams and events: destroyed or wild -> ACL_ERROR_INVALID_RESOURCE_HANDLE (200005);
     * an operator on a dead stream -> 361001 */
    aclrtStream s;
    EXPECT(aclrtCreateStream(&s) == ACL_SUCCESS && aclrtDestroyStream(s) == ACL_SUCCESS);
    EXPECT(aclrtDestroyStream(s) == ACL_ERROR_INVALID_RESOURCE_HANDLE);
    EXPECT(aclrtSynchronizeStream(s) == ACL_ERROR_INVALID_RESOURCE_HANDLE);
    EXPECT(aclrtSynchronizeStream(wild) == ACL_ERROR_INVALID_RESOURCE_HANDLE);
    EXPECT(aclnnMoeComputeExpertTokensGetWorkspaceSize(s2, 4, o, &ws, &ex) == ACLNN_SUCCESS);
    EXPECT(aclnnMoeComputeExpertTokens(NULL, 0, ex, s) == ACLNN_ERR_RUNTIME_ERROR);
    aclrtEvent ev;
    EXPECT(aclrtCreateEvent(&ev) == ACL_SUCCESS && aclrtDestroyEvent(ev) == ACL_SUCCESS);
    EXPECT(aclrtRecordEvent(ev, stream) == ACL_ERROR_INVALID_RESOURCE_HANDLE);
    EXPECT(aclrtSynchronizeEvent(wild) == ACL_ERROR_INVALID_RESOURCE_HANDLE);
    EXPECT(aclrtDestroyEvent(ev) == ACL_ERROR_INVALID_RESOURCE_HANDLE);
    EXPECT(aclrtFree(wild) == ACL_ERROR_INVALID_PARAM);                          /* 100000 */
    aclDestroyTensor(s2);
    aclDestroyTensor(o);
    aclrtFree(src);
    aclrtFree(out);
}

/* item 2: descriptor arithmetic is overflow-checked (aclCreateTensor -> NULL, 161002 in the message) */
static void descriptor_overflow(void)
{
    int64_t big[2] = {(int64_t)1 << 62, 4};
    EXPECT(aclCreateTensor(big, 2, ACL_INT32, NULL, 0, ACL_FORMAT_ND, big, 1, NULL) == NULL);
    int64_t dims[2] = {3, 2}, strides[2] = {(int64_t)1 << 62, 1}, storage = 8;
    EXPECT(aclCreateTensor(dims, 2, ACL_INT32, strides, 0, ACL_FORMAT_ND, &storage, 1, NULL) == NULL);
    int64_t d1 = 4, s1 = INT64_MAX / 2;
    EXPECT(aclCreateTensor(&d1, 1, ACL_INT32, &s1, 0, ACL_FORMAT_ND, &storage, 1, NULL) == NULL);
    int64_t off_dims = 2, off_stride = 1;
    EXPECT(aclCreateTensor(&off_dims, 1, ACL_INT32, &off_stride, INT64_MAX, ACL_FORMAT_ND, &storage, 1, NULL) == NULL);
    int64_t huge_storage = INT64_MAX / 2;
    EXPECT(aclCreateTensor(&d1, 1, ACL_INT32, NULL, 0, ACL_FORMAT_ND, &huge_storage, 1, NULL) == NULL);
    /* a view that does not wrap but reaches past its storage is refused by phase 1 (161002) */
    int32_t *src = (int32_t *)dev_alloc(16), *out = (int32_t *)dev_alloc(16);
    int64_t n = 4, st = (int64_t)1 << 40, four = 4;
    aclTensor *v = aclCreateTensor(&n, 1, ACL_INT32, &st, 0, ACL_FORMAT_ND, &four, 1, src);
    aclTensor *o = t1d(4, ACL_INT32, out);
    uint64_t ws;
    aclOpExecutor *ex;
    EXPECT(v != NULL);
    EXPECT(aclnnMoeComputeExpertTokensGetWorkspaceSize(v, 4, o, &ws, &ex) == ACLNN_ERR_PARAM_INVALID);
    aclDestroyTensor(v);
    aclDestroyTensor(o);
    aclrtFree(src);
    aclrtFree(out);
}

/* items 3 and 4: phase 2 gives the kernel phase 1's workspace only, refuses a smaller block (161002), a NULL
 * workspace with a size (161001), and outputs overlapping inputs, outputs or the workspace (161002) */
static void workspace_and_aliasing(aclrtStream stream)
{
    enum { T = 64, E = 16, K = 4 };
    float *x = (float *)dev_alloc(T * E * 4);
    for (int i = 0; i < T * E; i++) x[i] = (float)((i * 37) % 101) / 7.0f;
    float *y = (float *)dev_alloc(T * K * 4), *outp = (float *)dev_alloc(T * E * 4);
    int32_t *idx = (int32_t *)dev_alloc(T * K * 4);
    int64_t xd[2] = {T, E}, yd[2] = {T, K};
    aclTensor *xt = aclCreateTensor(xd, 2, ACL_FLOAT, NULL, 0, ACL_FORMAT_ND, xd, 2, x);
    aclTensor *yt = aclCreateTensor(yd, 2, ACL_FLOAT, NULL, 0, ACL_FORMAT_ND, yd, 2, y);
    aclTensor *it = aclCreateTensor(yd, 2, ACL_INT32, NULL, 0, ACL_FORMAT_ND, yd, 2, idx);
    aclTensor *ot = aclCreateTensor(xd, 2, ACL_FLOAT, NULL, 0, ACL_FORMAT_ND, xd, 2, outp);
    uint64_t ws = 0;
    aclOpExecutor *ex = NULL;
#define PLAN() aclnnMoeGatingTopKGetWorkspaceSize(xt, NULL, K, 1, 1, 0, 0, 0, true, 1.0, 1e-20, yt, it, ot, &ws, &ex)
    EXPECT(PLAN() == ACLNN_SUCCESS);
    EXPECT(ws > 0);
    void *small = dev_alloc(ws / 2 ? ws / 2 : 1);
    EXPECT(aclnnMoeGatingTopK(small, ws, ex, stream) == ACLNN_ERR_PARAM_INVALID);   /* block too small */
    EXPECT(PLAN() == ACLNN_SUCCESS);
    EXPECT(aclnnMoeGatingTopK(NULL, ws, ex, stream) == ACLNN_ERR_PARAM_NULLPTR);    /* NULL with a size */
    EXPECT(PLAN() == ACLNN_SUCCESS);
    EXPECT(aclnnMoeGatingTopK(small, ws - 1, ex, stream) == ACLNN_ERR_PARAM_INVALID); /* size below phase 1 */
    void *wsb = dev_alloc(ws);
    EXPECT(PLAN() == ACLNN_SUCCESS);
    EXPECT(aclnnMoeGatingTopK(wsb, UINT64_MAX / 2, ex, stream) == ACLNN_SUCCESS);   /* a lie: phase 1's size used */
    /* the workspace overlapping an output */
    EXPECT(PLAN() == ACLNN_SUCCESS);
    EXPECT(aclnnMoeGatingTopK((char *)outp + 64, ws, ex, stream) != ACLNN_SUCCESS);
    /* an output over an input, an output over another output */
    aclTensor *alias_out = aclCreateTensor(xd, 2, ACL_FLOAT, NULL, 0, ACL_FORMAT_ND, xd, 2, x);
    ex = NULL;
    EXPECT(aclnnMoeGatingTopKGetWorkspaceSize(xt, NULL, K, 1, 1, 0, 0, 0, true, 1.0, 1e-20, yt, it, alias_out, &ws,
                                              &ex) == ACLNN_SUCCESS);
    EXPECT(aclnnMoeGatingTopK(wsb, ws, ex, stream) == ACLNN_ERR_PARAM_INVALID);
    const char *m = aclGetRecentErrMsg();
    EXPECT(m && strstr(m, "overlap") && strstr(m, "outOut") && strstr(m, " x "));
    aclTensor *alias_idx = aclCreateTensor(yd, 2, ACL_INT32, NULL, 0, ACL_FORMAT_ND, yd, 2, y);
    EXPECT(aclnnMoeGatingTopKGetWorkspaceSize(xt, NULL, K, 1, 1, 0, 0, 0, true, 1.0, 1e-20, yt, alias_idx, ot, &ws,
                                              &ex) == ACLNN_SUCCESS);
    EXPECT(aclnnMoeGatingTopK(wsb, ws, ex, stream) == ACLNN_ERR_PARAM_INVALID);
    m = aclGetRecentErrMsg();
    EXPECT(m && strstr(m, "yOut") && strstr(m, "expertIdxOut"));
    aclTensor *ts[] = {xt, yt, it, ot, alias_out, alias_idx};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) aclDestroyTensor(ts[i]);
    void *bufs[] = {x, y, outp, idx, small, wsb};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) aclrtFree(bufs[i]);
#undef PLAN
}

/* item 5: addresses must be aligned to the element size (161002; the NPU needs 32 bytes, aclrtMalloc gives 64) */
static void alignment(aclrtStream stream)
{
    char *src = (char *)dev_alloc(64), *out = (char *)dev_alloc(64);
    EXPECT(t1d(4, ACL_INT32, src + 1) == NULL);
    aclTensor *a4 = t1d(4, ACL_INT32, src + 4); /* 4-byte aligned: accepted */
    EXPECT(a4 != NULL);
    aclDestroyTensor(a4);
    aclTensor *t = t1d(4, ACL_INT32, src), *o = t1d(4, ACL_INT32, out);
    EXPECT(aclSetRawTensorAddr(t, src + 2) == ACLNN_ERR_PARAM_INVALID);
    uint64_t ws;
    aclOpExecutor *ex;
    EXPECT(aclnnMoeComputeExpertTokensGetWorkspaceSize(t, 4, o, &ws, &ex) == ACLNN_SUCCESS);
    EXPECT(aclSetAclOpExecutorRepeatable(ex) == ACLNN_SUCCESS);
    EXPECT(aclSetInputTensorAddr(ex, 0, t, src + 1) == ACLNN_ERR_PARAM_INVALID);
    EXPECT(aclSetOutputTensorAddr(ex, 0, o, out + 3) == ACLNN_ERR_PARAM_INVALID);
    EXPECT(aclnnMoeComputeExpertTokens(NULL, 0, ex, stream) == ACLNN_SUCCESS);
    EXPECT(aclDestroyAclOpExecutor(ex) == ACLNN_SUCCESS);
    aclDestroyTensor(t);
    aclDestroyTensor(o);
    aclrtFree(src);
    aclrtFree(out);
}

/* items 7 and 8: NULL lists / arrays with a size -> NULL and a message; shape queries released with free() */
static void lists_and_shape_queries(void)
{
    EXPECT(aclCreateTensorList(NULL, 3) == NULL && aclGetRecentErrMsg() != NULL);
    EXPECT(aclCreateScalarList(NULL, 3) == NULL);
    EXPECT(aclCreateIntArray(NULL, 3) == NULL);
    EXPECT(aclCreateFloatArray(NULL, 3) == NULL);
    EXPECT(aclCreateBoolArray(NULL, 3) == NULL);
    EXPECT(aclCreateIntArray(NULL, UINT64_MAX) == NULL);
    int64_t v = 7;
    EXPECT(aclCreateIntArray(&v, UINT64_MAX / 4) == NULL); /* size * 8 overflows */
    int64_t dims[3] = {2, 3, 4}, strides[3] = {12, 4, 1}, storage[1] = {24};
    aclTensor *t = aclCreateTensor(dims, 3, ACL_FLOAT, strides, 0, ACL_FORMAT_ND, storage, 1, NULL);
    int64_t *out = NULL;
    uint64_t n = 0;
    EXPECT(aclGetViewShape(t, &out, &n) == ACLNN_SUCCESS && n == 3 && out[2] == 4);
    free(out);
    EXPECT(aclGetViewStrides(t, &out, &n) == ACLNN_SUCCESS && n == 3 && out[0] == 12);
    free(out);
    EXPECT(aclGetStorageShape(t, &out, &n) == ACLNN_SUCCESS && n == 1 && out[0] == 24);
    free(out);
    EXPECT(aclGetViewShape(t, NULL, &n) == ACLNN_ERR_PARAM_NULLPTR);
    const aclTensor *members[2] = {t, NULL};
    aclTensorList *list = aclCreateTensorList(members, 2);
    EXPECT(list != NULL && aclDestroyTensorList(list) == ACLNN_SUCCESS);
    EXPECT(aclDestroyTensor(t) == ACLNN_ERR_PARAM_INVALID); /* the list destroyed it */
}

int main(void)
{
    if (aclInit(NULL) != ACL_SUCCESS || aclrtSetDevice(0) != ACL_SUCCESS) return 2;
    aclrtStream stream;
    if (aclrtCreateStream(&stream) != ACL_SUCCESS) return 2;
    destroyed_and_wild_handles(stream);
    descriptor_overflow();
    workspace_and_aliasing(stream);
    alignment(stream);
    lists_and_shape_queries();
    aclrtDestroyStream(stream);
    aclrtResetDevice(0);
    aclFinalize();
    if (failures) return 1;
    printf("OK\n");
    return 0;
}
