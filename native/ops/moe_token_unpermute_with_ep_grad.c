/*
 * aclnnMoeTokenUnpermuteWithEpGrad: the backward of MoeTokenUnpermuteWithEp (a generated operator: shape and
 * attribute failures are 561002).
 *
 *   d = sortedIndices[p], p = t*K + k, selected when start <= d < end (and d < rows of permutedTokens when the
 *   window starts at 0, i.e. rows dropped by the forward's numOutTokens):
 *   permutedTokensGradOut[d - start] = unpermutedTokensGrad[t] * probs[t, k]      (1 without probs; fp32, RNE)
 *   probsGradOut[t, k] = sum_j permutedTokens[d - start][j] * unpermutedTokensGrad[t][j]   (0 when not selected)
 *   rows of permutedTokensGradOut no index selects are zero (the NPU leaves them unwritten).
 *
 * This is the official kernel (ops-transformer moe_token_unpermute_with_ep_grad/op_kernel, prob_none and
 * prob_not_none): both branches write row d - start, which settles the doc's index formula (one branch of the
 * doc omits "- start"). The output shape: the infershape gives [T*K, H]; the gradient of the forward's
 * permutedTokens is [range length, H]; both are accepted (and the rows of permutedTokensOptional).
 * The range as the tiling resolves it: a negative bound counts from T*K, both are clamped to [0, T*K], and
 * end < start -> 561002; rangeOptional NULL: [0, T*K). K is probsOptional's dim 1 when probs are given (topkNum
 * is then ignored, as the tiling does), else topkNum. probsOptional needs permutedTokensOptional (161001).
 * Empty tensors are accepted (the NPU tiling rejects a zero T, K or H; here they give empty outputs).
 * A negative sortedIndices value, or two selecting the same row -> ACLNN_ERR_PARAM_INVALID before anything is
 * written; values past the window are skipped, as the kernel skips them.
 */
#include "aclnnop/aclnn_moe_token_unpermute_with_ep_grad.h"
#include "moe_grad_common.h"

#define UNPERMUTE_GRAD_MAX_TOPK 512

enum { GRAD, SORTED, PERMUTED, PROBS, RESTORE, RANGE, OUT, PROBS_OUT };

aclnnStatus aclnnMoeTokenUnpermuteWithEpGradGetWorkspaceSize(
    const aclTensor *unpermutedTokensGrad, const aclTensor *sortedIndices, const aclTensor *permutedTokensOptional,
    const aclTensor *probsOptional, bool paddedMode, const aclIntArray *restoreShapeOptional,
    const aclIntArray *rangeOptional, int64_t topkNum, const aclTensor *permutedTokensGradOut,
    const aclTensor *probsGradOut, uint64_t *workspaceSize, aclOpExecutor **executor)
{
    static const OpParamSpec params[] = {
        [GRAD] = {"unpermutedTokensGrad", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2)},
        [SORTED] = {"sortedIndices", OP_IN, OP_INT32_TYPE, OP_NO_REF, OP_RANK(1)},
        [PERMUTED] = {"permutedTokensOptional", OP_IN | OP_OPTIONAL, OP_FLOAT_TYPES, GRAD, OP_RANK(2)},
        /* may have another float dtype than the tokens */
        [PROBS] = {"probsOptional", OP_IN | OP_OPTIONAL, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2)},
        [RESTORE] = {"restoreShapeOptional", OP_INT_ARRAY | OP_OPTIONAL, NULL, OP_NO_REF, 0},
        [RANGE] = {"rangeOptional", OP_INT_ARRAY | OP_OPTIONAL, NULL, OP_NO_REF, 0},
        [OUT] = {"permutedTokensGradOut", OP_OUT, NULL, GRAD, OP_RANK(2)},
        /* a required output, written only with probs */
        [PROBS_OUT] = {"probsGradOut", OP_OUT, OP_FLOAT_TYPES, PROBS, 0},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeTokenUnpermuteWithEpGrad", ACLNN_ERR_INNER_TILING_ERROR, params);
    const void *h_args[] = {unpermutedTokensGrad, sortedIndices, permutedTokensOptional, probsOptional,
                            restoreShapeOptional, rangeOptional, permutedTokensGradOut, probsGradOut};
    /* the probs gradient reads the forward's permutedTokens: required with probs */
    OP_TRY(op_check_params(&op, h_args, probsOptional != NULL ? 1u << PERMUTED : 0u));
    const aclTensor *grad = unpermutedTokensGrad, *permuted = permutedTokensOptional, *probs = probsOptional;

    if (paddedMode) return op_fail_shape(&op, "paddedMode true is not supported (only false)");
    const int64_t n = sortedIndices->dims[0], t = grad->dims[0], h = grad->dims[1];
    int64_t k = topkNum;
    if (probs != NULL) {
        k = probs->dims[1];
        if (probs->dims[0] != t)
            return op_fail_shape(&op, "probsOptional dim 0 (%lld) must equal unpermutedTokensGrad dim 0 (%lld)",
                                 (long long)probs->dims[0], (long long)t);
    }
    if (k < 1 || k > OP_MAX_TOPK)
        return op_fail_shape(&op, "top-k (%s) must be in [1, %d], got %lld",
                             probs != NULL ? "probsOptional dim 1" : "topkNum", OP_MAX_TOPK, (long long)k);
    int64_t tk;
    if (!op_mul_ok(t, k, &tk) || n != tk)
        return op_fail_shape(&op, "sortedIndices length (%lld) must be T*K = %lld * %lld", (long long)n, (long long)t,
                             (long long)k);
    if (permuted != NULL && permuted->dims[1] != h)
        return op_fail_shape(&op, "permutedTokensOptional hidden size (%lld) must equal unpermutedTokensGrad's (%lld)",
                             (long long)permuted->dims[1], (long long)h);
    if (restoreShapeOptional != NULL && restoreShapeOptional->size != 0 &&
        (restoreShapeOptional->size != 2 || restoreShapeOptional->values[0] != t ||
         restoreShapeOptional->values[1] != h))
        return op_fail_shape(&op, "restoreShapeOptional must be NULL or [T, H] = [%lld, %lld]", (long long)t,
                             (long long)h);
    /* the range as the tiling resolves it: a negative bound counts from T*K, both are clamped to [0, T*K]
     * (op_read_range rejects negative values, so it is not used here) */
    int64_t start = 0, end = n;
    if (rangeOptional != NULL && rangeOptional->size != 0) {
        if (rangeOptional->size != 2)
            return op_fail_shape(&op, "rangeOptional must have 2 elements [start, end], got %llu",
                                 (unsigned long long)rangeOptional->size);
        start = rangeOptional->values[0];
        end = rangeOptional->values[1];
        if (end < 0) end = end < -n ? 0 : end + n;
        if (start < 0) start = start < -n ? 0 : start + n;
        end = end > n ? n : end;
        start = start > n ? n : start;
        if (end < start)
            return op_fail_shape(&op, "rangeOptional[1] (%lld) must not be less than rangeOptional[0] (%lld)",
                                 (long long)rangeOptional->values[1], (long long)rangeOptional->values[0]);
    }
    /* the tiling's numOutTokens: rows of permutedTokens (T*K without it), or end when the window starts later */
    int64_t wend = end;
    if (start == 0 && permuted != NULL && permuted->dims[0] < wend) wend = permuted->dims[0];
    const int64_t len = wend - start;
    if (probs != NULL && permuted->dims[0] < len)
        return op_fail_shape(&op, "permutedTokensOptional must have at least %lld rows (range [%lld, %lld)), got %lld",
                             (long long)len, (long long)start, (long long)wend, (long long)permuted->dims[0]);
    const int64_t out_rows = permutedTokensGradOut->dims[0];
    if (permutedTokensGradOut->dims[1] != h ||
        (out_rows != n && out_rows != len && (permuted == NULL || out_rows != permuted->dims[0])))
        return op_fail_shape(&op, "permutedTokensGradOut must be [T*K = %lld, %lld] or [range length = %lld, %lld]%s",
                             (long long)n, (long long)h, (long long)len, (long long)h,
                             permuted != NULL ? " or the shape of permutedTokensOptional" : "");
    if (out_rows < len)
        return op_fail_shape(&op, "permutedTokensGradOut must have at least %lld rows", (long long)len);
    if (probs != NULL) {
        const int64_t pdims[2] = {t, k};
        OP_TRY(op_check_shape_of(&op, "probsGradOut", probsGradOut, 2, pdims));
    }
    MoeGradIndexRule rule = {"sortedIndices", 0, INT64_MAX, 0, start, wend};
    return moe_grad_scatter_create(&op, h_args, grad, sortedIndices, probs, probs != NULL ? permuted : NULL, NULL,
                                   NULL, t, k, rule, probs != NULL, workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenUnpermuteWithEpGrad(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                             aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenUnpermuteWithEpGrad");
}
