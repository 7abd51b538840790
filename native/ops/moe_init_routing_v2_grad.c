/*
 * aclnnMoeInitRoutingV2Grad: the backward of MoeInitRoutingV2 / V3 (expanded_x[d] = x[p / K] for d =
 * expandedRowIdx[p], p = i*K + k, row-major):
 *
 *   out[i] = sum over k of gradExpandedX[expandedRowIdx[i*K + k]]                  (fp32, RNE on store)
 *   dropless (dropPadMode 0, activeNum 0): gradExpandedX [N*K, H];
 *   active (dropPadMode 0, activeNum > 0): gradExpandedX [activeNum, H], rows >= activeNum add nothing;
 *   drop/pad (dropPadMode 1): gradExpandedX [E, C, H], -1 (a dropped token) adds nothing.
 *
 * The K rows of a token are added as a binary tree, the order of the official kernel's BinaryAdd (see
 * moe_grad_common.c). Status codes as documented (docs/aclnnMoeInitRoutingV2Grad.md): 561002 for the attribute
 * and shape rules (the op_api of the snapshot forwards to the generated aclnnInner operator). expandedRowIdx values
 * outside [0, N*K) (dropless, active) or [-1, E*C) (drop/pad) -> ACLNN_ERR_PARAM_INVALID before anything is written.
 */
#include "aclnnop/aclnn_moe_init_routing_v2_grad.h"
#include "moe_grad_common.h"

enum { GRAD, ROW_IDX, OUT };

aclnnStatus aclnnMoeInitRoutingV2GradGetWorkspaceSize(const aclTensor *gradExpandedX, const aclTensor *expandedRowIdx,
                                                      int64_t topK, int64_t dropPadMode, int64_t activeNum,
                                                      const aclTensor *out, uint64_t *workspaceSize,
                                                      aclOpExecutor **executor)
{
    static const OpParamSpec params[] = {
        [GRAD] = {"gradExpandedX", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2) | OP_RANK(3)},
        [ROW_IDX] = {"expandedRowIdx", OP_IN, OP_INT32_TYPE, OP_NO_REF, OP_RANK(1)},
        [OUT] = {"out", OP_OUT, NULL, GRAD, OP_RANK(2)},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeInitRoutingV2Grad", ACLNN_ERR_INNER_TILING_ERROR, params);
    const void *h_args[] = {gradExpandedX, expandedRowIdx, out};
    OP_TRY(op_check_params(&op, h_args, 0));
    const aclTensor *grad = gradExpandedX;

    if (dropPadMode != 0 && dropPadMode != 1)
        return op_fail_shape(&op, "dropPadMode must be 0 or 1, got %lld", (long long)dropPadMode);
    if (topK <= 0) return op_fail_shape(&op, "topK must be greater than 0, got %lld", (long long)topK);
    if (activeNum < 0) return op_fail_shape(&op, "activeNum must not be negative, got %lld", (long long)activeNum);
    if (dropPadMode == 1 && grad->ndim != 3)
        return op_fail_shape(&op, "gradExpandedX must be 3-D [E, C, H] when dropPadMode is 1, got %d-D", grad->ndim);
    if (dropPadMode == 0 && grad->ndim != 2)
        return op_fail_shape(&op, "gradExpandedX must be 2-D [N*K or activeNum, H] when dropPadMode is 0, got %d-D",
                             grad->ndim);
    const int64_t n = expandedRowIdx->dims[0], h = grad->dims[grad->ndim - 1];
    if (n % topK != 0)
        return op_fail_shape(&op, "expandedRowIdx length (%lld) must be a multiple of topK (%lld)", (long long)n,
                             (long long)topK);
    int64_t rows;
    if (dropPadMode == 1) {
        if (!op_mul_ok(grad->dims[0], grad->dims[1], &rows))
            return op_fail_shape(&op, "gradExpandedX E*C overflows");
    } else {
        rows = grad->dims[0];
        if (activeNum == 0 && rows != n)
            return op_fail_shape(&op, "gradExpandedX dim 0 (%lld) must equal expandedRowIdx length (%lld) when "
                                      "dropPadMode and activeNum are 0",
                                 (long long)rows, (long long)n);
        if (activeNum > 0 && rows != activeNum)
            return op_fail_shape(&op, "gradExpandedX dim 0 (%lld) must equal activeNum (%lld)", (long long)rows,
                                 (long long)activeNum);
    }
    if (out->dims[1] != h)
        return op_fail_shape(&op, "out dim 1 (%lld) must equal the hidden size of gradExpandedX (%lld)",
                             (long long)out->dims[1], (long long)h);
    if (out->dims[0] != n / topK)
        return op_fail_shape(&op, "out dim 0 (%lld) must be expandedRowIdx length / topK = %lld",
                             (long long)out->dims[0], (long long)(n / topK));
    MoeGradIndexRule rule = {"expandedRowIdx", 0, n, 0, 0, rows};
    if (dropPadMode == 1) rule = (MoeGradIndexRule){"expandedRowIdx", 0, rows, 1, 0, rows};
    return moe_grad_gather_create(&op, h_args, grad, expandedRowIdx, NULL, n / topK, topK, rule, MOE_GRAD_SUM_TREE,
                                  workspaceSize, executor);
}

aclnnStatus aclnnMoeInitRoutingV2Grad(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                      aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeInitRoutingV2Grad");
}
