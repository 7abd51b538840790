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

enum { PERMUTED, GRAD, SORTED, PROBS, RESTORE, OUT, PROBS_OUT };

aclnnStatus aclnnMoeTokenUnpermuteGradGetWorkspaceSize(const aclTensor *permuteTokens,
                                                       const aclTensor *unpermutedTokensGrad,
                                                       const aclTensor *sortedIndices, const aclTensor *probsOptional,
                                                       bool paddedMode, const aclIntArray *restoreShapeOptional,
                                                       aclTensor *permutedTokensGradOut, aclTensor *probsGradOut,
                                                       uint64_t *workspaceSize, aclOpExecutor **executor)
{
    static const OpParamSpec params[] = {
        [PERMUTED] = {"permuteTokens", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2)},
        [GRAD] = {"unpermutedTokensGrad", OP_IN, OP_FLOAT_TYPES, PERMUTED, OP_RANK(2)},
        [SORTED] = {"sortedIndices", OP_IN, OP_INT32_TYPE, OP_NO_REF, OP_RANK(1)},
        /* may have another float dtype than the tokens */
        [PROBS] = {"probsOptional", OP_IN | OP_OPTIONAL, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2)},
        [RESTORE] = {"restoreShapeOptional", OP_INT_ARRAY | OP_OPTIONAL, NULL, OP_NO_REF, 0},
        [OUT] = {"permutedTokensGradOut", OP_OUT, NULL, PERMUTED, OP_RANK(2)},
        /* a required output, written only with probs */
        [PROBS_OUT] = {"probsGradOut", OP_OUT, OP_FLOAT_TYPES, PROBS, 0},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeTokenUnpermuteGrad", ACLNN_ERR_INNER_TILING_ERROR, params);
    const void *h_args[] = {permuteTokens, unpermutedTokensGrad, sortedIndices, probsOptional, restoreShapeOptional,
                            permutedTokensGradOut, probsGradOut};
    OP_TRY(op_check_params(&op, h_args, 0));
    const aclTensor *grad = unpermutedTokensGrad, *permuted = permuteTokens, *probs = probsOptional;

    if (paddedMode) return op_fail_shape(&op, "paddedMode true is not supported (only false)");
    const int64_t n = sortedIndices->dims[0], t = grad->dims[0], h = grad->dims[1], rows = permuted->dims[0];
    int64_t k = 1;
    if (probs != NULL) {
        if (probs->dims[0] != t)
            return op_fail_shape(&op, "probsOptional dim 0 (%lld) must equal unpermutedTokensGrad dim 0 (%lld)",
                                 (long long)probs->dims[0], (long long)t);
        k = probs->dims[1];
    }
    if (k < 1 || k > OP_MAX_TOPK)
        return op_fail_shape(&op, "top-k (probsOptional dim 1) must be in [1, %d], got %lld", OP_MAX_TOPK,
                             (long long)k);
    int64_t tk;
    if (!op_mul_ok(t, k, &tk) || n != tk)
        return op_fail_shape(&op, "sortedIndices length (%lld) must be T*K = %lld * %lld", (long long)n, (long long)t,
                             (long long)k);
    if (permuted->dims[1] != h)
        return op_fail_shape(&op, "permuteTokens hidden size (%lld) must equal unpermutedTokensGrad's (%lld)",
                             (long long)permuted->dims[1], (long long)h);
    if (rows > n)
        return op_fail_shape(&op, "permuteTokens has %lld rows, more than T*K = %lld", (long long)rows, (long long)n);
    if (restoreShapeOptional != NULL && restoreShapeOptional->size != 0 &&
        (restoreShapeOptional->size != 2 || restoreShapeOptional->values[0] != t ||
         restoreShapeOptional->values[1] != h))
        return op_fail_shape(&op, "restoreShapeOptional must be NULL or [T, H] = [%lld, %lld]", (long long)t,
                             (long long)h);
    if (permutedTokensGradOut->dims[1] != h ||
        (permutedTokensGradOut->dims[0] != rows && permutedTokensGradOut->dims[0] != n))
        return op_fail_shape(&op, "permutedTokensGradOut must be [%lld, %lld] (the shape of permuteTokens) or "
                                  "[T*K = %lld, %lld]",
                             (long long)rows, (long long)h, (long long)n, (long long)h);
    if (probs != NULL) {
        const int64_t pdims[2] = {t, k};
        OP_TRY(op_check_shape_of(&op, "probsGradOut", probsGradOut, 2, pdims));
    }
    MoeGradIndexRule rule = {"sortedIndices", 0, INT64_MAX, 0, 0, rows};
    return moe_grad_scatter_create(&op, h_args, grad, sortedIndices, probs, probs != NULL ? permuted : NULL, NULL,
                                   NULL, t, k, rule, probs != NULL, workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenUnpermuteGrad(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                       aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenUnpermuteGrad");
}
