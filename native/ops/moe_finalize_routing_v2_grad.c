/*
 * aclnnMoeFinalizeRoutingV2Grad: the backward of MoeFinalizeRoutingV2 in its row-major layouts
 * (y[i] = sum_k scales[i, k] * (expandedX[expandedRowIdx[i*K + k]] + bias[expertIdx[i, k]]), p = i*K + k):
 *
 *   gradExpandedXOut[expandedRowIdx[p]] = gradY[p / K] * scales[p / K][p % K]     (scales absent: 1, K = 1)
 *   gradScalesOut[p] = sum_j (expandedX[expandedRowIdx[p]][j] + bias[expertIdx[p]][j]) * gradY[p / K][j]
 *   a dropped p (-1 in dropPadMode 1, a row >= activeNum in the active layout) writes no row and its scale
 *   gradient keeps the bias term only (0 without bias), as the official kernel does; rows no index selects are 0.
 *
 * dropPadMode 0: expandedX [R*K, H], or [activeNum, H] when 0 < activeNum < R*K; 1: [expertNum, expertCapacity, H].
 * Shape, value and attribute failures are 561103 (ACLNN_ERR_INNER_NULLPTR), as the doc's return-code table says and
 * the hand-written op_api does (its l0 call returns nullptr on a tiling failure). expandedRowIdx values outside
 * [0, R*K) (mode 0) or [-1, E*C) (mode 1), duplicates, or an expertIdxOptional value outside [0, E) ->
 * ACLNN_ERR_PARAM_INVALID before anything is written. gradScalesOut is written only when scalesOptional is given.
 */
#include "aclnnop/aclnn_moe_finalize_routing_v2_grad.h"
#include "moe_grad_common.h"

#define FAIL(...) moe_grad_fail(ACLNN_ERR_INNER_NULLPTR, api, __VA_ARGS__)

aclnnStatus aclnnMoeFinalizeRoutingV2GradGetWorkspaceSize(
    const aclTensor *gradY, const aclTensor *expandedRowIdx, const aclTensor *expandedXOptional,
    const aclTensor *scalesOptional, const aclTensor *expertIdxOptional, const aclTensor *biasOptional,
    int64_t dropPadMode, int64_t activeNum, int64_t expertNum, int64_t expertCapacity,
    const aclTensor *gradExpandedXOut, const aclTensor *gradScalesOut, uint64_t *workspaceSize,
    aclOpExecutor **executor)
{
    static const char *api = "aclnnMoeFinalizeRoutingV2Grad";
    const aclTensor *x = expandedXOptional, *scales = scalesOptional, *experts = expertIdxOptional;
    const aclTensor *bias = biasOptional;
    OP_TRY(op_check_not_null(api, "gradY", gradY));
    OP_TRY(op_check_not_null(api, "expandedRowIdx", expandedRowIdx));
    OP_TRY(op_check_not_null(api, "gradExpandedXOut", gradExpandedXOut));
    OP_TRY(op_check_not_null(api, "gradScalesOut", gradScalesOut));
    OP_TRY(op_check_not_null(api, "workspaceSize", workspaceSize));
    OP_TRY(op_check_not_null(api, "executor", executor));
    if (scales == NULL) bias = experts = NULL; /* the kernel reads bias only with scales */
    if (bias == NULL) experts = NULL;

    OP_TRY(op_check_dtype(api, "gradY", gradY, OP_FLOAT_TYPES));
    OP_TRY(op_check_dtype(api, "expandedRowIdx", expandedRowIdx, OP_INT32_TYPE));
    OP_TRY(op_check_same_dtype(api, "gradExpandedXOut", gradExpandedXOut, "gradY", gradY));
    OP_TRY(op_check_format(api, "gradY", gradY));
    OP_TRY(op_check_format(api, "expandedRowIdx", expandedRowIdx));
    OP_TRY(op_check_format(api, "gradExpandedXOut", gradExpandedXOut));
    if (scales != NULL) {
        /* Atlas A2/A3: scales in the dtype of gradY */
        OP_TRY(op_check_same_dtype(api, "scalesOptional", scales, "gradY", gradY));
        OP_TRY(op_check_same_dtype(api, "gradScalesOut", gradScalesOut, "scalesOptional", scales));
        OP_TRY(op_check_format(api, "scalesOptional", scales));
        OP_TRY(op_check_format(api, "gradScalesOut", gradScalesOut));
        if (x != NULL) {
            OP_TRY(op_check_same_dtype(api, "expandedXOptional", x, "gradY", gradY));
            OP_TRY(op_check_format(api, "expandedXOptional", x));
        }
        if (bias != NULL) {
            OP_TRY(op_check_same_dtype(api, "biasOptional", bias, "gradY", gradY));
            OP_TRY(op_check_format(api, "biasOptional", bias));
            if (experts != NULL) {
                OP_TRY(op_check_dtype(api, "expertIdxOptional", experts, OP_INT32_TYPE));
                OP_TRY(op_check_format(api, "expertIdxOptional", experts));
            }
        }
    }

    /* 561103: attributes and shapes (official tiling CheckAttr / CheckRequiredInput / CheckParams) */
    if (dropPadMode != 0 && dropPadMode != 1)
        return FAIL("dropPadMode must be 0 or 1, got %lld", (long long)dropPadMode);
    if (dropPadMode == 1 && (expertNum <= 0 || expertCapacity <= 0))
        return FAIL("expertNum (%lld) and expertCapacity (%lld) must be greater than 0 when dropPadMode is 1",
                    (long long)expertNum, (long long)expertCapacity);
    if (gradY->ndim != 2) return FAIL("gradY must be 2-D [R, H], got %d-D", gradY->ndim);
    if (expandedRowIdx->ndim != 1) return FAIL("expandedRowIdx must be 1-D [R*K], got %d-D", expandedRowIdx->ndim);
    const int64_t r = gradY->dims[0], h = gradY->dims[1], n = expandedRowIdx->dims[0];
    int64_t rows = n;
    if (dropPadMode == 0 && activeNum > 0 && activeNum < n) rows = activeNum;
    if (dropPadMode == 1) rows = expertNum * expertCapacity;
    int64_t k = 1;
    if (scales != NULL) {
        if (x == NULL) return FAIL("expandedXOptional must be given when scalesOptional is given");
        if (bias != NULL && experts == NULL) return FAIL("expertIdxOptional must be given when biasOptional is given");
        if (x->ndim != (dropPadMode == 1 ? 3 : 2))
            return FAIL("expandedXOptional must be %s when dropPadMode is %lld, got %d-D",
                        dropPadMode == 1 ? "3-D [E, C, H]" : "2-D [rows, H]", (long long)dropPadMode, x->ndim);
        if (scales->ndim != 2) return FAIL("scalesOptional must be 2-D [R, K], got %d-D", scales->ndim);
        if (x->ndim == 2 && x->dims[0] != rows)
            return FAIL("expandedXOptional dim 0 must be %lld, got %lld", (long long)rows, (long long)x->dims[0]);
        if (x->ndim == 3 && (x->dims[0] != expertNum || x->dims[1] != expertCapacity))
            return FAIL("expandedXOptional must be [expertNum = %lld, expertCapacity = %lld, H], got [%lld, %lld, H]",
                        (long long)expertNum, (long long)expertCapacity, (long long)x->dims[0], (long long)x->dims[1]);
        if (x->dims[x->ndim - 1] != h)
            return FAIL("expandedXOptional hidden size (%lld) must equal gradY's (%lld)",
                        (long long)x->dims[x->ndim - 1], (long long)h);
        if (scales->dims[0] != r)
            return FAIL("scalesOptional dim 0 (%lld) must equal gradY dim 0 (%lld)", (long long)scales->dims[0],
                        (long long)r);
        if (scales->dims[0] * scales->dims[1] != n)
            return FAIL("scalesOptional has %lld elements, expandedRowIdx %lld: they must be equal",
                        (long long)(scales->dims[0] * scales->dims[1]), (long long)n);
        k = scales->dims[1];
        if (bias != NULL) {
            if (experts->ndim != 2) return FAIL("expertIdxOptional must be 2-D [R, K], got %d-D", experts->ndim);
            if (bias->ndim != 2) return FAIL("biasOptional must be 2-D [E, H], got %d-D", bias->ndim);
            if (experts->dims[0] != r || experts->dims[1] != k)
                return FAIL("expertIdxOptional must be [%lld, %lld], got [%lld, %lld]", (long long)r, (long long)k,
                            (long long)experts->dims[0], (long long)experts->dims[1]);
            if (bias->dims[0] <= 0) return FAIL("biasOptional dim 0 must be greater than 0");
            if (dropPadMode == 1 && bias->dims[0] != expertNum)
                return FAIL("biasOptional dim 0 (%lld) must equal expertNum (%lld)", (long long)bias->dims[0],
                            (long long)expertNum);
            if (bias->dims[1] != h)
                return FAIL("biasOptional dim 1 (%lld) must equal the hidden size (%lld)", (long long)bias->dims[1],
                            (long long)h);
        }
        const int64_t gsd[2] = {r, k};
        OP_TRY(moe_grad_check_shape(ACLNN_ERR_INNER_NULLPTR, api, "gradScalesOut", gradScalesOut, 2, gsd));
    } else if (r != n) {
        return FAIL("gradY dim 0 (%lld) must equal expandedRowIdx length (%lld) without scalesOptional (K = 1)",
                    (long long)r, (long long)n);
    }
    const aclTensor *gx = gradExpandedXOut;
    if (gx->ndim == 2) {
        if (gx->dims[0] != rows || gx->dims[1] != h)
            return FAIL("gradExpandedXOut must be [%lld, %lld], got [%lld, %lld]", (long long)rows, (long long)h,
                        (long long)gx->dims[0], (long long)gx->dims[1]);
    } else if (gx->ndim == 3) {
        if (gx->dims[0] * gx->dims[1] != rows || gx->dims[2] != h)
            return FAIL("gradExpandedXOut must hold %lld rows of %lld, got [%lld, %lld, %lld]", (long long)rows,
                        (long long)h, (long long)gx->dims[0], (long long)gx->dims[1], (long long)gx->dims[2]);
    } else {
        return FAIL("gradExpandedXOut must be 2-D or 3-D, got %d-D", gx->ndim);
    }
    MoeGradIndexRule rule = {"expandedRowIdx", 0, n, 0, 0, rows};
    if (dropPadMode == 1) rule = (MoeGradIndexRule){"expandedRowIdx", 0, rows, 1, 0, rows};
    const aclTensor *ins[] = {gradY, expandedRowIdx, expandedXOptional, scalesOptional, expertIdxOptional,
                              biasOptional};
    const aclTensor *outs[] = {gradExpandedXOut, gradScalesOut};
    return moe_grad_scatter_create(api, gradY, expandedRowIdx, scales, scales != NULL ? x : NULL, bias, experts, r, k,
                                   rule, gx, scales != NULL ? gradScalesOut : NULL, ins, 6, outs, 2, workspaceSize,
                                   executor);
}

aclnnStatus aclnnMoeFinalizeRoutingV2Grad(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                          aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeFinalizeRoutingV2Grad");
}
