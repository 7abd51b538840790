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

enum { GRAD, SORTED, PROBS, RANGE, TOKEN_OUT, PROBS_OUT };

aclnnStatus aclnnMoeTokenPermuteWithEpGradGetWorkspaceSize(const aclTensor *permutedTokensOutputGrad,
                                                           const aclTensor *sortedIndices,
                                                           const aclTensor *permutedProbsOutputGradOptional,
                                                           int64_t numTopk, const aclIntArray *rangeOptional,
                                                           bool paddedMode, const aclTensor *tokenGradOut,
                                                           const aclTensor *probsGradOut, uint64_t *workspaceSize,
                                                           aclOpExecutor **executor)
{
    static const OpParamSpec params[] = {
        [GRAD] = {"permutedTokensOutputGrad", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2)},
        [SORTED] = {"sortedIndices", OP_IN, OP_INT32_TYPE, OP_NO_REF, OP_RANK(1)},
        [PROBS] = {"permutedProbsOutputGradOptional", OP_IN | OP_OPTIONAL, OP_FLOAT_TYPES, GRAD, OP_RANK(1)},
        [RANGE] = {"rangeOptional", OP_INT_ARRAY | OP_OPTIONAL, NULL, OP_NO_REF, 0},
        [TOKEN_OUT] = {"tokenGradOut", OP_OUT, NULL, GRAD, OP_RANK(2)},
        /* a required output, written only with a probs gradient and a range */
        [PROBS_OUT] = {"probsGradOut", OP_OUT, OP_FLOAT_TYPES, PROBS, 0},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeTokenPermuteWithEpGrad", ACLNN_ERR_INNER_TILING_ERROR, params);
    const void *h_args[] = {permutedTokensOutputGrad, sortedIndices, permutedProbsOutputGradOptional, rangeOptional,
                            tokenGradOut, probsGradOut};
    OP_TRY(op_check_params(&op, h_args, 0));
    const aclTensor *grad = permutedTokensOutputGrad, *probs = permutedProbsOutputGradOptional;

    /* 561002: attributes and shapes (official tiling MoeTokenUnpermuteWithEpInputParamCheck, infershape) */
    if (numTopk < 1 || numTopk > OP_MAX_TOPK)
        return op_fail_shape(&op, "numTopk must be in [1, %d], got %lld", OP_MAX_TOPK, (long long)numTopk);
    if (paddedMode) return op_fail_shape(&op, "paddedMode true is not supported (only false)");
    const int64_t n = sortedIndices->dims[0], rows = grad->dims[0], h = grad->dims[1];
    if (n % numTopk != 0)
        return op_fail_shape(&op, "sortedIndices length (%lld) must be a multiple of numTopk (%lld)", (long long)n,
                             (long long)numTopk);
    const int64_t t = n / numTopk;
    const int has_range = rangeOptional != NULL && rangeOptional->size != 0;
    int64_t start = 0, end = rows;
    if (has_range) {
        OP_TRY(op_read_range(&op, "rangeOptional", rangeOptional, &start, &end));
        if (end > n || end < start)
            return op_fail_shape(&op, "rangeOptional [%lld, %lld] must satisfy 0 <= start <= end <= T*K = %lld",
                                 (long long)start, (long long)end, (long long)n);
        const int64_t len = end - start;
        if (rows != len && rows != len * numTopk)
            return op_fail_shape(&op,
                                 "permutedTokensOutputGrad dim 0 must be the range length %lld (or the documented "
                                 "%lld = length * numTopk), got %lld",
                                 (long long)len, (long long)(len * numTopk), (long long)rows);
    } else {
        probs = NULL; /* the fallback (MoeTokenPermuteGrad) ignores the probs gradient */
        if (rows > n)
            return op_fail_shape(&op, "permutedTokensOutputGrad has %lld rows, more than T*K = %lld", (long long)rows,
                                 (long long)n);
    }
    const int64_t out_dims[2] = {t, h};
    OP_TRY(op_check_shape_of(&op, "tokenGradOut", tokenGradOut, 2, out_dims));
    if (probs != NULL) {
        const int64_t len = end - start;
        if (probs->dims[0] != len && probs->dims[0] != len * numTopk)
            return op_fail_shape(&op, "permutedProbsOutputGradOptional must have %lld (or %lld) elements, got %lld",
                                 (long long)len, (long long)(len * numTopk), (long long)probs->dims[0]);
        const int64_t pdims[2] = {t, numTopk};
        OP_TRY(op_check_shape_of(&op, "probsGradOut", probsGradOut, 2, pdims));
    }
    MoeGradIndexRule rule = {"sortedIndices", 0, INT64_MAX, 0, start, end};
    return moe_grad_gather_create(&op, h_args, grad, sortedIndices, probs, t, numTopk, rule, MOE_GRAD_SUM_SEQUENTIAL,
                                  workspaceSize, executor);
}

aclnnStatus aclnnMoeTokenPermuteWithEpGrad(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                           aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeTokenPermuteWithEpGrad");
}
