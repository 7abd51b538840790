/*
 * aclnnMoeTokenPermuteGrad: the backward of MoeTokenPermute. On Atlas A2/A3 the op_api calls the generated
 * aclnnInnerMoeTokenPermuteGrad, so shape and attribute failures are 561002.
 *
 *   for t in [0, T): out[t] = sum over k ascending of permutedOutputGrad[d], d = sortedIndices[t*K + k] < rows
 *   (rows = dim 0 of permutedOutputGrad, the forward's numOutTokens: dropped rows add nothing; fp32, RNE)
 *
 * The official kernel is the MoeTokenUnpermute one without probs (ops-transformer moe_token_permute_grad/op_kernel);
 * on Ascend 950 the op_api calls MoeInitRoutingV2Grad instead, the same math. A negative sortedIndices value ->
 * ACLNN_ERR_PARAM_INVALID before anything is written; values >= rows are skipped as the kernel skips them (the
 * official example passes float bits as int32 and relies on it).
 */
#include "aclnnop/aclnn_moe_token_permute_grad.h"
#include "moe_grad_common.h"

#define PERMUTE_GRAD_MAX_TOPK 512

enum { GRAD, SORTED, OUT };

aclnnStatus aclnnMoeTokenPermuteGradGetWorkspaceSize(const aclTensor *permutedOutputGrad,
                                                     const aclTensor *sortedIndices, int64_t numTopk, bool paddedMode,
                                                     aclTensor *out, uint64_t *workspaceSize, aclOpExecutor **executor)
{
    static const OpParamSpec params[] = {
        [GRAD] = {"permutedOutputGrad", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2)},
        [SORTED] = {"sortedIndices", OP_IN, OP_INT32_TYPE, OP_NO_REF, OP_RANK(1)},
        [OUT] = {"out", OP_OUT, NULL, GRAD, OP_RANK(2)},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeTokenPermuteGrad", ACLNN_ERR_INNER_TILING_ERROR, params);
    const void *h_args[] = {permutedOutputGrad, sortedIndices, out};
    OP_TRY(op_check_params(&op, h_args, 0));

    if (numTopk < 1 || numTopk > OP_MAX_TOPK)
        return op_fail_shape(&op, "numTopk must be in [1, %d], got %lld", OP_MAX_TOPK, (long long)numTopk);
    if (paddedMode) return op_fail_shape(&op, "paddedMode true is not supported (only false)");
    const int64_t n = sortedIndices->dims[0], rows = permutedOutputGrad->dims[0];
    if (n % numTopk != 0)
        return op_fail_shape(&op, "sortedIndices length (%lld) must be a multiple of numTopk (%lld)", (long long)n,
                             (long long)numTopk);
    if (rows > n)
        return op_fail_shape(&op, "permutedOutputGrad has %lld rows, more than T*K = %lld", (long long)rows,
                             (long long)n);
    const int64_t out_dims[2] = {n / numTopk, permutedOutputGrad->dims[1]};
    OP_TRY(op_check_shape_of(&op, "out", out, 2, out_dims));
    MoeGradIndexRule rule = {"sortedIndices", 0, INT64_MAX, 0, 0, rows};
    return moe_grad_gather_create(&op, h_args, permutedOutputGrad, sortedIndices, NULL, n / numTopk, numTopk, rule,
                                  MOE_GRAD_SUM_SEQUENTIAL, workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenPermuteGrad(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                     aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenPermuteGrad");
}
