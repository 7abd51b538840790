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
 * Computed as the golden defines it, one binary search per expert (O(E log N), the golden's midpoint rule, so the
 * result equals the reference on any input), after a scan that rejects negative ids: an OR of sign bits that
 * runs at memory speed (in chunks on the kernel pool for large inputs), where the former histogram paid a
 * store-to-load dependency on every element of a sorted run.
 */
#include <stdint.h>
#include <string.h>

#include "aclnnop/aclnn_moe_compute_expert_tokens.h"
#include "op_common.h"

#define CET_MAX_ROWS (INT64_C(1) << 24) /* the tiling rejects M > 2^24 (the doc says < 2^24) */
#define CET_PARALLEL_MIN_ROWS (INT64_C(1) << 16)
#define CET_ROWS_PER_CHUNK (INT64_C(1) << 15)
#define CET_SCAN_BLOCK 1024 /* rows OR-ed before one test: vectorised, and the first bad row is found after */

typedef struct {
    int64_t rows;
    int64_t num_experts;
} ComputeExpertTokensParams;

typedef struct {
    const aclTensor *in;
    int64_t rows;
    int64_t nchunks;
    int64_t *bad_pos;   /* per chunk: first position of a negative value, or -1 */
    int64_t *bad_value; /* per chunk: that value */
} CetCtx;

static void cet_chunk(void *vctx, int64_t begin, int64_t end)
{
    const CetCtx *c = (const CetCtx *)vctx;
    const aclTensor *t = c->in;
    for (int64_t ch = begin; ch < end; ch++) {
        int64_t i0 = c->rows * ch / c->nchunks, i1 = c->rows * (ch + 1) / c->nchunks;
        c->bad_pos[ch] = -1;
        const int64_t st = i1 - i0 <= 1 ? 1 : t->strides[0];
        const int32_t *v = (const int32_t *)t->data + t->offset + i0 * t->strides[0];
        for (int64_t b = i0; b < i1; b += CET_SCAN_BLOCK) {
            const int64_t n = i1 - b < CET_SCAN_BLOCK ? i1 - b : CET_SCAN_BLOCK;
            const int32_t *w = v + (b - i0) * st;
            int32_t any = 0;
            if (st == 1)
                for (int64_t j = 0; j < n; j++) any |= w[j];
            else
                for (int64_t j = 0; j < n; j++) any |= w[j * st];
            if (any >= 0) continue;
            for (int64_t j = 0; j < n; j++)
                if (w[j * st] < 0) {
                    c->bad_pos[ch] = b + j;
                    c->bad_value[ch] = w[j * st];
                    break;
                }
            break;
        }
    }
}

/* The golden's search: the last position whose value is <= target, plus one (0 when there is none). */
static int32_t cet_upper(const int32_t *v, int64_t st, int64_t n, int64_t target)
{
    int64_t low = 0, high = n - 1, loc = -1;
    while (low <= high) {
        const int64_t mid = (low + high) / 2; /* both >= 0: truncation is the golden's floor */
        if (v[mid * st] > target) {
            high = mid - 1;
        } else {
            loc = mid;
            low = mid + 1;
        }
    }
    return (int32_t)(loc + 1);
}

static aclnnStatus cet_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    (void)wsSize; /* scratch is sized by ex->workspace_size (see op_common.h), never by the caller's claim */
    const ComputeExpertTokensParams *p = (const ComputeExpertTokensParams *)ex->params;
    const int64_t ne = p->num_experts;
    const uint64_t per_chunk = 2 * sizeof(int64_t);
    int64_t stack_bad[2];
    CetCtx c;
    c.in = ex->inputs[0];
    c.rows = p->rows;
    int64_t nchunks = 1;
    if (ws && ((uintptr_t)ws & 7u) == 0 && p->rows >= CET_PARALLEL_MIN_ROWS) {
        int64_t avail = (int64_t)(ex->workspace_size / per_chunk);
        nchunks = p->rows / CET_ROWS_PER_CHUNK;
        if (nchunks > avail) nchunks = avail;
        if (nchunks < 1) nchunks = 1;
    }
    if (nchunks > 1) {
        c.bad_pos = (int64_t *)ws; /* layout: [bad_pos int64 x n][bad_value int64 x n] (8-byte aligned base) */
        c.bad_value = c.bad_pos + nchunks;
        c.nchunks = nchunks;
        acl_host_parallel_for(nchunks, 1, cet_chunk, &c);
    } else {
        c.bad_pos = &stack_bad[0];
        c.bad_value = &stack_bad[1];
        c.nchunks = 1;
        cet_chunk(&c, 0, 1);
    }
    for (int64_t ch = 0; ch < c.nchunks; ch++) /* chunks are in position order: the first hit is the lowest */
        if (c.bad_pos[ch] >= 0)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                  "aclnnMoeComputeExpertTokens: sortedExperts[%lld] = %lld is negative; expert ids "
                                  "start at 0 (numExperts %lld)",
                                  (long long)c.bad_pos[ch], (long long)c.bad_value[ch], (long long)ne);
    const aclTensor *in = ex->inputs[0], *out = ex->outputs[0];
    const int64_t st = p->rows <= 1 ? 1 : in->strides[0];
    const int32_t *v = (const int32_t *)in->data + in->offset;
    for (int64_t i = 0; i < ne; i++) *(int32_t *)op_ptr2(out, i, 0) = cet_upper(v, st, p->rows, i);
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
        if (n > 1) ws = (uint64_t)n * 2 * sizeof(int64_t);
    }
    return op_create_executor(&op, h, cet_kernel, &p, sizeof p, ws, workspaceSize, executor);
}

aclnnStatus aclnnMoeComputeExpertTokens(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                        aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeComputeExpertTokens");
}
