/*
 * aclnnMoeComputeExpertTokens on the host runtime (spec/semantics.md section 1, spec/abi.md 5.1).
 *
 * out[i] = number of elements of sortedExperts that are <= i, for i in [0, numExperts): on sorted input this is
 * upper_bound(sortedExperts, i), the official golden's binary search (the exclusive end of expert i's segment).
 * Values >= numExperts belong to no expert and are ignored, as in the official golden: the official torch test
 * draws values in [0, numExperts] and the torch_npu doc's own example passes [3,3,4,5,6,7] with numExperts 5
 * ([unconfirmed] on the NPU, whose kernel would write past its output; we follow the golden and stay in
 * bounds). Negative values have no meaning in a sorted expert list and are rejected by the kernel with
 * ACLNN_ERR_PARAM_INVALID before anything is written: sorted input (the operator's contract) has its smallest id
 * first, so sortedExperts[0] is checked, and so is every id a search reads (unsorted input is caught when a search
 * meets a negative id; CANN's kernel checks no ids at all). The kernel reads nothing else: at most O(E log N), as the
 * operator is documented and as torch.searchsorted is; a scan of every id had cost as much as the whole torch
 * composite at large N.
 * With few ids per expert the E searches walk the golden's search tree together (cet_search), so shared parts of
 * their paths are probed once; with many, they run one after the other (cet_search_each).
 */
#include <stdint.h>
#include <string.h>

#include "aclnnop/aclnn_moe_compute_expert_tokens.h"
#include "op_common.h"

#define CET_MAX_ROWS (INT64_C(1) << 24) /* the tiling rejects M > 2^24 (the doc says < 2^24) */
#define CET_SHARED_WALK_IDS_PER_EXPERT 32

typedef struct {
    int64_t rows;
    int64_t num_experts;
} ComputeExpertTokensParams;

typedef struct {
    const int32_t *v;
    int64_t st;
    int32_t *counts;
    int32_t bad; /* the lowest position of a negative id read, or INT32_MAX */
} CetSearch;

/* The golden's search (mid = (low + high) / 2; v[mid] > target: high = mid - 1; else loc = mid, low = mid + 1; while
 * low <= high; result loc + 1) for every target in [t0, t1) at once, all of them in state (low, high, loc). At a
 * node the targets below v[mid] go left and the others right: the targets are consecutive integers, so the split
 * is one clamp, and this holds whatever the ids are (the result is the golden's on any input). Targets that share
 * a path share its probes: O(E log(N/E) + E) probes for E experts over N sorted ids, instead of E log N. */
static void cet_search(CetSearch *s, int32_t low, int32_t high, int32_t loc, int32_t t0, int32_t t1)
{
    while (low <= high) {
        const int32_t mid = (low + high) / 2; /* both >= 0: truncation is the golden's floor */
        const int32_t x = s->v[(int64_t)mid * s->st];
        if (x < 0 && mid < s->bad) s->bad = mid;
        const int32_t split = x < t0 ? t0 : x > t1 ? t1 : x; /* targets [t0, split) are below x */
        if (split == t1) { /* all go left */
            high = mid - 1;
        } else if (split == t0) { /* all go right */
            loc = mid;
            low = mid + 1;
        } else {
            cet_search(s, low, mid - 1, loc, t0, split); /* depth <= the tree's, log2(2^24) + 1 */
            loc = mid;
            low = mid + 1;
            t0 = split;
        }
    }
    for (int32_t t = t0; t < t1; t++) s->counts[t] = loc + 1;
}

/* The golden's search for one target, as a plain loop. Over many ids per expert, consecutive targets follow nearly
 * the same path, so its branches predict well and one search after the other beats the shared walk, whose leaf
 * searches each start somewhere new. */
static void cet_search_each(CetSearch *s, int32_t rows, int32_t ne)
{
    const int32_t *v = s->v;
    const int64_t st = s->st;
    int32_t *counts = s->counts;
    int32_t first_bad = s->bad; /* (locals: the stores to counts could alias s) */
    for (int32_t t = 0; t < ne; t++) {
        int32_t low = 0, high = rows - 1, loc = -1;
        while (low <= high) {
            const int32_t mid = (low + high) / 2;
            const int32_t x = v[(int64_t)mid * st];
            if (x < 0 && mid < first_bad) first_bad = mid;
            if (x > t) {
                high = mid - 1;
            } else {
                loc = mid;
                low = mid + 1;
            }
        }
        counts[t] = loc + 1;
    }
    s->bad = first_bad;
}

static aclnnStatus cet_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    (void)ws;
    (void)wsSize;
    const ComputeExpertTokensParams *p = (const ComputeExpertTokensParams *)ex->params;
    const int64_t ne = p->num_experts;
    const int32_t rows = (int32_t)p->rows; /* <= 2^24 (checked in phase 1) */
    const aclTensor *in = ex->inputs[0], *out = ex->outputs[0];
    const int64_t st = rows <= 1 ? 1 : in->strides[0];
    const int32_t *v = (const int32_t *)in->data + in->offset;
    int32_t counts[OP_MAX_EXPERTS]; /* written to out only once every search is known to be clean */
    CetSearch s = {v, st, counts, rows > 0 && v[0] < 0 ? 0 : INT32_MAX};
    if (rows <= CET_SHARED_WALK_IDS_PER_EXPERT * ne) /* measured: the walk wins at 8 ids per expert, even at 128 */
        cet_search(&s, 0, rows - 1, -1, 0, (int32_t)ne);
    else
        cet_search_each(&s, rows, (int32_t)ne);
    const int32_t bad = s.bad;
    if (bad != INT32_MAX)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                              "aclnnMoeComputeExpertTokens: sortedExperts[%lld] = %lld is negative; expert ids start "
                              "at 0 (numExperts %lld)",
                              (long long)bad, (long long)v[(int64_t)bad * st], (long long)ne);
    for (int64_t i = 0; i < ne; i++) *(int32_t *)op_ptr2(out, i, 0) = counts[i];
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
    return op_create_executor(&op, h, cet_kernel, &p, sizeof p, 0, workspaceSize, executor);
}

aclnnStatus aclnnMoeComputeExpertTokens(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                        aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeComputeExpertTokens");
}
