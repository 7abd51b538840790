/*
 * aclnnMoeComputeExpertTokens on the host runtime (spec/semantics.md section 1, spec/abi.md 5.1).
 *
 * out[i] = number of elements of sortedExperts that are <= i, for i in [0, numExperts): on sorted input this is
 * upper_bound(sortedExperts, i), the official golden's binary search (the exclusive end of expert i's segment).
 * Values >= numExperts belong to no expert and are ignored, as in the official golden: the official torch test
 * draws values in [0, numExperts] and the torch_npu doc's own example passes [3,3,4,5,6,7] with numExperts 5
 * ([unconfirmed] on the NPU, whose kernel would write past its output; we follow the golden and stay in
 * bounds). Negative values have no meaning in a sorted expert list and are rejected by the kernel with
 * ACLNN_ERR_PARAM_INVALID before anything is written.
 * Computed as a histogram (multithreaded for large inputs) followed by an inclusive prefix sum.
 */
#include <stdint.h>
#include <string.h>

#include "aclnnop/aclnn_moe_compute_expert_tokens.h"
#include "op_common.h"

#define CET_MAX_ROWS (INT64_C(1) << 24) /* the tiling rejects M > 2^24 (the doc says < 2^24) */
#define CET_PARALLEL_MIN_ROWS (INT64_C(1) << 16)
#define CET_ROWS_PER_CHUNK (INT64_C(1) << 15)

typedef struct {
    int64_t rows;
    int64_t num_experts;
} ComputeExpertTokensParams;

typedef struct {
    const aclTensor *in;
    int64_t rows;
    int64_t num_experts;
    int64_t nchunks;
    int32_t *hist;      /* nchunks x (num_experts + 1) counters; slot num_experts counts ignored values */
    int64_t *bad_pos;   /* per chunk: first position of an out-of-range value, or -1 */
    int64_t *bad_value; /* per chunk: that value */
} CetCtx;

static void cet_chunk(void *vctx, int64_t begin, int64_t end)
{
    const CetCtx *c = (const CetCtx *)vctx;
    const aclTensor *t = c->in;
    const int64_t ne = c->num_experts;
    for (int64_t ch = begin; ch < end; ch++) {
        int32_t *h = c->hist + ch * (ne + 1);
        memset(h, 0, (size_t)(ne + 1) * sizeof(int32_t));
        int64_t i0 = c->rows * ch / c->nchunks, i1 = c->rows * (ch + 1) / c->nchunks;
        c->bad_pos[ch] = -1;
        const int64_t st = i1 - i0 <= 1 ? 1 : t->strides[0];
        const int32_t *v = (const int32_t *)t->data + t->offset + i0 * t->strides[0];
        for (int64_t i = i0; i < i1; i++, v += st) {
            const int32_t e = *v;
            if (e < 0) {
                c->bad_pos[ch] = i;
                c->bad_value[ch] = e;
                break;
            }
            h[e < ne ? e : ne]++; /* slot ne collects the ignored ids >= numExperts */
        }
    }
}

static aclnnStatus cet_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    (void)wsSize; /* scratch is sized by ex->workspace_size (see op_common.h), never by the caller's claim */
    const ComputeExpertTokensParams *p = (const ComputeExpertTokensParams *)ex->params;
    const int64_t ne = p->num_experts;
    /* per chunk: (ne + 1) int32 counters + 2 int64; chunk 0 may live on the stack when there is no workspace */
    const uint64_t per_chunk = (uint64_t)(ne + 1) * sizeof(int32_t) + 2 * sizeof(int64_t);
    int32_t stack_hist[OP_MAX_EXPERTS + 1];
    int64_t stack_bad[2];
    CetCtx c;
    c.in = ex->inputs[0];
    c.rows = p->rows;
    c.num_experts = ne;
    int64_t nchunks = 1;
    if (ws && ((uintptr_t)ws & 7u) == 0 && p->rows >= CET_PARALLEL_MIN_ROWS) {
        int64_t avail = (int64_t)(ex->workspace_size / per_chunk);
        nchunks = p->rows / CET_ROWS_PER_CHUNK;
        if (nchunks > avail) nchunks = avail;
        if (nchunks < 1) nchunks = 1;
    }
    if (nchunks > 1) {
        /* layout: [bad_pos int64 x n][bad_value int64 x n][hist int32 x n x (ne+1)] (8-byte aligned base) */
        c.bad_pos = (int64_t *)ws;
        c.bad_value = c.bad_pos + nchunks;
        c.hist = (int32_t *)(c.bad_value + nchunks);
        c.nchunks = nchunks;
        acl_host_parallel_for(nchunks, 1, cet_chunk, &c);
    } else {
        c.bad_pos = &stack_bad[0];
        c.bad_value = &stack_bad[1];
        c.hist = stack_hist;
        c.nchunks = 1;
        cet_chunk(&c, 0, 1);
    }
    for (int64_t ch = 0; ch < c.nchunks; ch++) /* chunks are in position order: the first hit is the lowest */
        if (c.bad_pos[ch] >= 0)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                  "aclnnMoeComputeExpertTokens: sortedExperts[%lld] = %lld is negative; expert ids "
                                  "start at 0 (numExperts %lld)",
                                  (long long)c.bad_pos[ch], (long long)c.bad_value[ch], (long long)ne);
    const aclTensor *out = ex->outputs[0];
    int64_t acc = 0;
    for (int64_t i = 0; i < ne; i++) {
        for (int64_t ch = 0; ch < c.nchunks; ch++) acc += c.hist[ch * (ne + 1) + i];
        *(int32_t *)op_ptr2(out, i, 0) = (int32_t)acc;
    }
    return ACLNN_SUCCESS;
}

aclnnStatus aclnnMoeComputeExpertTokensGetWorkspaceSize(const aclTensor *sortedExperts, int64_t numExperts,
                                                        const aclTensor *out, uint64_t *workspaceSize,
                                                        aclOpExecutor **executor)
{
    static const OpParamSpec params[] = {
        {"sortedExperts", OP_IN, OP_INT32_TYPE, OP_NO_REF, OP_RANK(1)},
        {"out", OP_OUT, NULL, 0, OP_RANK(1)},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeComputeExpertTokens", ACLNN_ERR_INNER_TILING_ERROR, params);
    const void *h[] = {sortedExperts, out};
    OP_TRY(op_check_params(&op, h, 0));
    const int64_t rows = sortedExperts->dims[0];
    if (rows > CET_MAX_ROWS)
        return op_fail_shape(&op, "sortedExperts has %lld elements, more than 2^24", (long long)rows);
    if (numExperts <= 0 || numExperts > OP_MAX_EXPERTS)
        return op_fail_shape(&op, "numExperts (%lld) must be in (0, %d]", (long long)numExperts, OP_MAX_EXPERTS);
    const int64_t oshape[1] = {numExperts};
    OP_TRY(op_check_shape_of(&op, "out", out, 1, oshape));

    ComputeExpertTokensParams p;
    memset(&p, 0, sizeof p);
    p.rows = rows;
    p.num_experts = numExperts;
    uint64_t ws = 0;
    if (rows >= CET_PARALLEL_MIN_ROWS) {
        int64_t n = acl_host_num_threads();
        int64_t by_rows = rows / CET_ROWS_PER_CHUNK;
        if (n > by_rows) n = by_rows;
        if (n > 1) ws = (uint64_t)n * ((uint64_t)(numExperts + 1) * sizeof(int32_t) + 2 * sizeof(int64_t));
    }
    return op_create_executor(&op, h, cet_kernel, &p, sizeof p, ws, workspaceSize, executor);
}

aclnnStatus aclnnMoeComputeExpertTokens(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                        aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeComputeExpertTokens");
}
