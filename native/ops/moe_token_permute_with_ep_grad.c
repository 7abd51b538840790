/*
 * aclnnMoeTokenPermuteWithEpGrad: the backward of MoeTokenPermuteWithEp (a generated operator: shape and attribute
 * failures are 561002).
 *
 *   for t in [0, T): tokenGradOut[t] = sum over k ascending of permutedTokensOutputGrad[d - start]
 *                    for d = sortedIndices[t*K + k] in [start, end)           (fp32, RNE on store)
 *   probsGradOut[t, k] = permutedProbsOutputGradOptional[d - start] for d in [start, end), else 0
 *
 * This is the official kernel (ops-transformer moe_token_permute_with_ep_grad/op_kernel: the unpermute kernel with
 * the window test start <= d < end); sortedIndices is the forward's scatter index (destination row of the flat
 * position t*K + k). Doc versus golden: the doc gives permutedTokensOutputGrad as [(end-start)*K, H], the kernel
 * reads row d - start < end - start and the golden and the example pass [end-start, H]: both are accepted, only the
 * first end - start rows are read (likewise [end-start] or [(end-start)*K] for the probs gradient).
 * rangeOptional NULL (or of size 0): the documented fallback to MoeTokenPermuteGrad (start 0, end = rows of
 * permutedTokensOutputGrad, the forward's numOutTokens), the probs gradient is ignored. An explicit range
 * start == end selects nothing (zeros), as the kernel does; start or end outside [0, T*K], or end < start -> 561002.
 * A negative sortedIndices value -> ACLNN_ERR_PARAM_INVALID before anything is written; values past the window
 * are skipped, as the kernel skips them (the official example relies on it).
 */
#include "aclnnop/aclnn_moe_token_permute_with_ep_grad.h"
#include "moe_grad_common.h"

#define PERMUTE_GRAD_MAX_TOPK 512

aclnnStatus aclnnMoeTokenPermuteWithEpGradGetWorkspaceSize(const aclTensor *permutedTokensOutputGrad,
                                                           const aclTensor *sortedIndices,
                                                           const aclTensor *permutedProbsOutputGradOptional,
                                                           int64_t numTopk, const aclIntArray *rangeOptional,
                                                           bool paddedMode, const aclTensor *tokenGradOut,
                                                           const aclTensor *probsGradOut, uint64_t *workspaceSize,
                                                           aclOpExecutor **executor)
{
    static const char *api = "aclnnMoeTokenPermuteWithEpGrad";
    const aclTensor *grad = permutedTokensOutputGrad, *probs = permutedProbsOutputGradOptional;
    /* 161001 */
    OP_TRY(op_check_not_null(api, "permutedTokensOutputGrad", grad));
    OP_TRY(op_check_not_null(api, "sortedIndices", sortedIndices));
    OP_TRY(op_check_not_null(api, "tokenGradOut", tokenGradOut));
    OP_TRY(op_check_not_null(api, "probsGradOut", probsGradOut));
    OP_TRY(op_check_not_null(api, "workspaceSize", workspaceSize));
    OP_TRY(op_check_not_null(api, "executor", executor));

    /* 161002 */
    OP_TRY(op_check_dtype(api, "permutedTokensOutputGrad", grad, OP_FLOAT_TYPES));
    OP_TRY(op_check_dtype(api, "sortedIndices", sortedIndices, OP_INT32_TYPE));
    OP_TRY(op_check_same_dtype(api, "tokenGradOut", tokenGradOut, "permutedTokensOutputGrad", grad));
    OP_TRY(op_check_format(api, "permutedTokensOutputGrad", grad));
    OP_TRY(op_check_format(api, "sortedIndices", sortedIndices));
    OP_TRY(op_check_format(api, "tokenGradOut", tokenGradOut));
    const int has_range = rangeOptional != NULL && rangeOptional->size != 0;
    if (!has_range) probs = NULL; /* the fallback ignores the probs gradient */
    if (probs != NULL) {
        OP_TRY(op_check_same_dtype(api, "permutedProbsOutputGradOptional", probs, "permutedTokensOutputGrad", grad));
        OP_TRY(op_check_same_dtype(api, "probsGradOut", probsGradOut, "permutedProbsOutputGradOptional", probs));
        OP_TRY(op_check_format(api, "permutedProbsOutputGradOptional", probs));
        OP_TRY(op_check_format(api, "probsGradOut", probsGradOut));
    }

    /* 561002: attributes and shapes (official tiling MoeTokenUnpermuteWithEpInputParamCheck, infershape) */
    if (numTopk < 1 || numTopk > PERMUTE_GRAD_MAX_TOPK)
        return op_fail_tiling(api, "numTopk must be in [1, %d], got %lld", PERMUTE_GRAD_MAX_TOPK, (long long)numTopk);
    if (paddedMode) return op_fail_tiling(api, "paddedMode true is not supported (only false)");
    if (grad->ndim != 2)
        return op_fail_tiling(api, "permutedTokensOutputGrad must be 2-D [range length, H], got %d-D", grad->ndim);
    if (sortedIndices->ndim != 1)
        return op_fail_tiling(api, "sortedIndices must be 1-D [T*K], got %d-D", sortedIndices->ndim);
    const int64_t n = sortedIndices->dims[0], rows = grad->dims[0], h = grad->dims[1];
    if (n % numTopk != 0)
        return op_fail_tiling(api, "sortedIndices length (%lld) must be a multiple of numTopk (%lld)", (long long)n,
                              (long long)numTopk);
    const int64_t t = n / numTopk;
    int64_t start = 0, end = rows;
    if (has_range) {
        if (rangeOptional->size != 2)
            return op_fail_tiling(api, "rangeOptional must have 2 elements [start, end], got %llu",
                                  (unsigned long long)rangeOptional->size);
        start = rangeOptional->values[0];
        end = rangeOptional->values[1];
        if (start < 0 || end > n || end < start)
            return op_fail_tiling(api, "rangeOptional [%lld, %lld] must satisfy 0 <= start <= end <= T*K = %lld",
                                  (long long)start, (long long)end, (long long)n);
        const int64_t len = end - start;
        if (rows != len && rows != len * numTopk)
            return op_fail_tiling(api,
                                  "permutedTokensOutputGrad dim 0 must be the range length %lld (or the documented "
                                  "%lld = length * numTopk), got %lld",
                                  (long long)len, (long long)(len * numTopk), (long long)rows);
    } else if (rows > n) {
        return op_fail_tiling(api, "permutedTokensOutputGrad has %lld rows, more than T*K = %lld", (long long)rows,
                              (long long)n);
    }
    const int64_t out_dims[2] = {t, h};
    OP_TRY(op_check_shape(api, "tokenGradOut", tokenGradOut, 2, out_dims));
    if (probs != NULL) {
        const int64_t len = end - start;
        if (probs->ndim != 1)
            return op_fail_tiling(api, "permutedProbsOutputGradOptional must be 1-D, got %d-D", probs->ndim);
        if (probs->dims[0] != len && probs->dims[0] != len * numTopk)
            return op_fail_tiling(api, "permutedProbsOutputGradOptional must have %lld (or %lld) elements, got %lld",
                                  (long long)len, (long long)(len * numTopk), (long long)probs->dims[0]);
        const int64_t pdims[2] = {t, numTopk};
        OP_TRY(op_check_shape(api, "probsGradOut", probsGradOut, 2, pdims));
    }
    MoeGradIndexRule rule = {"sortedIndices", 0, INT64_MAX, 0, start, end};
    const aclTensor *ins[] = {grad, sortedIndices, permutedProbsOutputGradOptional};
    const aclTensor *outs[] = {tokenGradOut, probsGradOut};
    return moe_grad_gather_create(api, grad, sortedIndices, probs, t, numTopk, rule, MOE_GRAD_SUM_SEQUENTIAL,
                                  tokenGradOut, probsGradOut, ins, 3, outs, 2, workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenPermuteWithEpGrad(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                           aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenPermuteWithEpGrad");
}
