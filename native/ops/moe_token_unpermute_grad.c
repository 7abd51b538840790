/*
 * aclnnMoeTokenUnpermuteGrad: the backward of MoeTokenUnpermute. On Atlas A2/A3 the op_api calls the generated
 * aclnnInnerMoeTokenUnpermuteGrad, so shape and attribute failures are 561002.
 *
 *   d = sortedIndices[p], p = t*K + k, selected when d < rows (rows = dim 0 of permuteTokens, the forward's
 *   numOutTokens; dropped rows get no gradient):
 *   permutedTokensGradOut[d] = unpermutedTokensGrad[t] * probs[t, k]                  (1 without probs)
 *   probsGradOut[t, k] = sum_j permuteTokens[d][j] * unpermutedTokensGrad[t][j]       (0 when dropped)
 *   unselected rows of permutedTokensGradOut are zero.
 *
 * The same kernel as MoeTokenUnpermuteWithEpGrad with the window [0, rows). permutedTokensGradOut is
 * [rows, H] (the gradient of permuteTokens) or [T*K, H] (the official infershape). K is probsOptional's dim 1,
 * or 1 without probs. A negative sortedIndices value, or two selecting the same row -> ACLNN_ERR_PARAM_INVALID
 * before anything is written; values >= rows (dropped by numOutTokens) are skipped, as the kernel skips them.
 */
#include "aclnnop/aclnn_moe_token_unpermute_grad.h"
#include "moe_grad_common.h"

#define UNPERMUTE_GRAD_MAX_TOPK 512

aclnnStatus aclnnMoeTokenUnpermuteGradGetWorkspaceSize(const aclTensor *permuteTokens,
                                                       const aclTensor *unpermutedTokensGrad,
                                                       const aclTensor *sortedIndices, const aclTensor *probsOptional,
                                                       bool paddedMode, const aclIntArray *restoreShapeOptional,
                                                       aclTensor *permutedTokensGradOut, aclTensor *probsGradOut,
                                                       uint64_t *workspaceSize, aclOpExecutor **executor)
{
    static const char *api = "aclnnMoeTokenUnpermuteGrad";
    const aclTensor *grad = unpermutedTokensGrad, *permuted = permuteTokens, *probs = probsOptional;
    OP_TRY(op_check_not_null(api, "permuteTokens", permuted));
    OP_TRY(op_check_not_null(api, "unpermutedTokensGrad", grad));
    OP_TRY(op_check_not_null(api, "sortedIndices", sortedIndices));
    OP_TRY(op_check_not_null(api, "permutedTokensGradOut", permutedTokensGradOut));
    OP_TRY(op_check_not_null(api, "probsGradOut", probsGradOut));
    OP_TRY(op_check_not_null(api, "workspaceSize", workspaceSize));
    OP_TRY(op_check_not_null(api, "executor", executor));

    OP_TRY(op_check_dtype(api, "permuteTokens", permuted, OP_FLOAT_TYPES));
    OP_TRY(op_check_same_dtype(api, "unpermutedTokensGrad", grad, "permuteTokens", permuted));
    OP_TRY(op_check_dtype(api, "sortedIndices", sortedIndices, OP_INT32_TYPE));
    OP_TRY(op_check_same_dtype(api, "permutedTokensGradOut", permutedTokensGradOut, "permuteTokens", permuted));
    OP_TRY(op_check_format(api, "permuteTokens", permuted));
    OP_TRY(op_check_format(api, "unpermutedTokensGrad", grad));
    OP_TRY(op_check_format(api, "sortedIndices", sortedIndices));
    OP_TRY(op_check_format(api, "permutedTokensGradOut", permutedTokensGradOut));
    if (probs != NULL) {
        OP_TRY(op_check_dtype(api, "probsOptional", probs, OP_FLOAT_TYPES));
        OP_TRY(op_check_same_dtype(api, "probsGradOut", probsGradOut, "probsOptional", probs));
        OP_TRY(op_check_format(api, "probsOptional", probs));
        OP_TRY(op_check_format(api, "probsGradOut", probsGradOut));
    }

    if (paddedMode) return op_fail_tiling(api, "paddedMode true is not supported (only false)");
    if (permuted->ndim != 2 || grad->ndim != 2 || sortedIndices->ndim != 1)
        return op_fail_tiling(api, "permuteTokens and unpermutedTokensGrad must be 2-D and sortedIndices 1-D, got "
                                   "%d-D, %d-D and %d-D",
                              permuted->ndim, grad->ndim, sortedIndices->ndim);
    const int64_t n = sortedIndices->dims[0], t = grad->dims[0], h = grad->dims[1], rows = permuted->dims[0];
    int64_t k = 1;
    if (probs != NULL) {
        if (probs->ndim != 2) return op_fail_tiling(api, "probsOptional must be 2-D [T, K], got %d-D", probs->ndim);
        if (probs->dims[0] != t)
            return op_fail_tiling(api, "probsOptional dim 0 (%lld) must equal unpermutedTokensGrad dim 0 (%lld)",
                                  (long long)probs->dims[0], (long long)t);
        k = probs->dims[1];
    }
    if (k < 1 || k > UNPERMUTE_GRAD_MAX_TOPK)
        return op_fail_tiling(api, "top-k (probsOptional dim 1) must be in [1, %d], got %lld", UNPERMUTE_GRAD_MAX_TOPK,
                              (long long)k);
    if (n != t * k)
        return op_fail_tiling(api, "sortedIndices length (%lld) must be T*K = %lld * %lld", (long long)n,
                              (long long)t, (long long)k);
    if (permuted->dims[1] != h)
        return op_fail_tiling(api, "permuteTokens hidden size (%lld) must equal unpermutedTokensGrad's (%lld)",
                              (long long)permuted->dims[1], (long long)h);
    if (rows > n)
        return op_fail_tiling(api, "permuteTokens has %lld rows, more than T*K = %lld", (long long)rows, (long long)n);
    if (restoreShapeOptional != NULL && restoreShapeOptional->size != 0 &&
        (restoreShapeOptional->size != 2 || restoreShapeOptional->values[0] != t ||
         restoreShapeOptional->values[1] != h))
        return op_fail_tiling(api, "restoreShapeOptional must be NULL or [T, H] = [%lld, %lld]", (long long)t,
                              (long long)h);
    if (permutedTokensGradOut->ndim != 2 || permutedTokensGradOut->dims[1] != h ||
        (permutedTokensGradOut->dims[0] != rows && permutedTokensGradOut->dims[0] != n))
        return op_fail_tiling(api, "permutedTokensGradOut must be [%lld, %lld] (the shape of permuteTokens) or "
                                   "[T*K = %lld, %lld]",
                              (long long)rows, (long long)h, (long long)n, (long long)h);
    if (probs != NULL) {
        const int64_t pdims[2] = {t, k};
        OP_TRY(op_check_shape(api, "probsGradOut", probsGradOut, 2, pdims));
    }
    MoeGradIndexRule rule = {"sortedIndices", 0, INT64_MAX, 0, 0, rows};
    const aclTensor *ins[] = {permuteTokens, unpermutedTokensGrad, sortedIndices, probsOptional};
    const aclTensor *outs[] = {permutedTokensGradOut, probsGradOut};
    return moe_grad_scatter_create(api, grad, sortedIndices, probs, probs != NULL ? permuted : NULL, NULL, NULL, t, k,
                                   rule, permutedTokensGradOut, probs != NULL ? probsGradOut : NULL, ins, 4, outs, 2,
                                   workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenUnpermuteGrad(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                       aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenUnpermuteGrad");
}
