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

aclnnStatus aclnnMoeTokenPermuteGradGetWorkspaceSize(const aclTensor *permutedOutputGrad,
                                                     const aclTensor *sortedIndices, int64_t numTopk, bool paddedMode,
                                                     aclTensor *out, uint64_t *workspaceSize, aclOpExecutor **executor)
{
    static const char *api = "aclnnMoeTokenPermuteGrad";
    const aclTensor *grad = permutedOutputGrad;
    OP_TRY(op_check_not_null(api, "permutedOutputGrad", grad));
    OP_TRY(op_check_not_null(api, "sortedIndices", sortedIndices));
    OP_TRY(op_check_not_null(api, "out", out));
    OP_TRY(op_check_not_null(api, "workspaceSize", workspaceSize));
    OP_TRY(op_check_not_null(api, "executor", executor));

    OP_TRY(op_check_dtype(api, "permutedOutputGrad", grad, OP_FLOAT_TYPES));
    OP_TRY(op_check_dtype(api, "sortedIndices", sortedIndices, OP_INT32_TYPE));
    OP_TRY(op_check_same_dtype(api, "out", out, "permutedOutputGrad", grad));
    OP_TRY(op_check_format(api, "permutedOutputGrad", grad));
    OP_TRY(op_check_format(api, "sortedIndices", sortedIndices));
    OP_TRY(op_check_format(api, "out", out));

    if (numTopk < 1 || numTopk > PERMUTE_GRAD_MAX_TOPK)
        return op_fail_tiling(api, "numTopk must be in [1, %d], got %lld", PERMUTE_GRAD_MAX_TOPK, (long long)numTopk);
    if (paddedMode) return op_fail_tiling(api, "paddedMode true is not supported (only false)");
    if (grad->ndim != 2)
        return op_fail_tiling(api, "permutedOutputGrad must be 2-D [numOutTokens, H], got %d-D", grad->ndim);
    if (sortedIndices->ndim != 1)
        return op_fail_tiling(api, "sortedIndices must be 1-D [T*K], got %d-D", sortedIndices->ndim);
    const int64_t n = sortedIndices->dims[0], rows = grad->dims[0];
    if (n % numTopk != 0)
        return op_fail_tiling(api, "sortedIndices length (%lld) must be a multiple of numTopk (%lld)", (long long)n,
                              (long long)numTopk);
    if (rows > n)
        return op_fail_tiling(api, "permutedOutputGrad has %lld rows, more than T*K = %lld", (long long)rows,
                              (long long)n);
    const int64_t out_dims[2] = {n / numTopk, grad->dims[1]};
    OP_TRY(op_check_shape(api, "out", out, 2, out_dims));
    MoeGradIndexRule rule = {"sortedIndices", 0, INT64_MAX, 0, 0, rows};
    const aclTensor *ins[] = {grad, sortedIndices}, *outs[] = {out};
    return moe_grad_gather_create(api, grad, sortedIndices, NULL, n / numTopk, numTopk, rule,
                                  MOE_GRAD_SUM_SEQUENTIAL, out, NULL, ins, 2, outs, 1, workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenPermuteGrad(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                     aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenPermuteGrad");
}
