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

#define FAIL(...) op_fail_shape(&op, __VA_ARGS__)

enum { GRAD_Y, ROW_IDX, X, SCALES, EXPERTS, BIAS, GRAD_X, GRAD_SCALES };

aclnnStatus aclnnMoeFinalizeRoutingV2GradGetWorkspaceSize(
    const aclTensor *gradY, const aclTensor *expandedRowIdx, const aclTensor *expandedXOptional,
    const aclTensor *scalesOptional, const aclTensor *expertIdxOptional, const aclTensor *biasOptional,
    int64_t dropPadMode, int64_t activeNum, int64_t expertNum, int64_t expertCapacity,
    const aclTensor *gradExpandedXOut, const aclTensor *gradScalesOut, uint64_t *workspaceSize,
    aclOpExecutor **executor)
{
    static const OpParamSpec params[] = {
        [GRAD_Y] = {"gradY", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2)},
        [ROW_IDX] = {"expandedRowIdx", OP_IN, OP_INT32_TYPE, OP_NO_REF, OP_RANK(1)},
        [X] = {"expandedXOptional", OP_IN | OP_OPTIONAL, OP_FLOAT_TYPES, GRAD_Y, OP_RANK(2) | OP_RANK(3)},
        /* Atlas A2/A3: scales in the dtype of gradY */
        [SCALES] = {"scalesOptional", OP_IN | OP_OPTIONAL, OP_FLOAT_TYPES, GRAD_Y, OP_RANK(2)},
        [EXPERTS] = {"expertIdxOptional", OP_IN | OP_OPTIONAL, OP_INT32_TYPE, OP_NO_REF, OP_RANK(2)},
        [BIAS] = {"biasOptional", OP_IN | OP_OPTIONAL, OP_FLOAT_TYPES, GRAD_Y, OP_RANK(2)},
        [GRAD_X] = {"gradExpandedXOut", OP_OUT, NULL, GRAD_Y, OP_RANK(2) | OP_RANK(3)},
        /* required by the op_api, written only with scales */
        [GRAD_SCALES] = {"gradScalesOut", OP_OUT, OP_FLOAT_TYPES, SCALES, 0},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeFinalizeRoutingV2Grad", ACLNN_ERR_INNER_NULLPTR, params);
    const void *h_args[] = {gradY, expandedRowIdx, expandedXOptional, scalesOptional, expertIdxOptional,
                            biasOptional, gradExpandedXOut, gradScalesOut};
    OP_TRY(op_check_params(&op, h_args, 0));
    const aclTensor *x = expandedXOptional, *scales = scalesOptional, *experts = expertIdxOptional;
    const aclTensor *bias = biasOptional;
    if (scales == NULL) bias = experts = NULL; /* the kernel reads bias only with scales */
    if (bias == NULL) experts = NULL;

    /* 561103: attributes and shapes (official tiling CheckAttr / CheckRequiredInput / CheckParams) */
    if (dropPadMode != 0 && dropPadMode != 1)
        return FAIL("dropPadMode must be 0 or 1, got %lld", (long long)dropPadMode);
    if (dropPadMode == 1 && (expertNum <= 0 || expertCapacity <= 0))
        return FAIL("expertNum (%lld) and expertCapacity (%lld) must be greater than 0 when dropPadMode is 1",
                    (long long)expertNum, (long long)expertCapacity);
    const int64_t r = gradY->dims[0], h = gradY->dims[1], n = expandedRowIdx->dims[0];
    int64_t rows = n;
    if (dropPadMode == 0 && activeNum > 0 && activeNum < n) rows = activeNum;
    if (dropPadMode == 1 && !op_mul_ok(expertNum, expertCapacity, &rows))
        return FAIL("expertNum * expertCapacity overflows");
    int64_t k = 1;
    if (scales != NULL) {
        if (x == NULL) return FAIL("expandedXOptional must be given when scalesOptional is given");
        if (bias != NULL && experts == NULL) return FAIL("expertIdxOptional must be given when biasOptional is given");
        if (x->ndim != (dropPadMode == 1 ? 3 : 2))
            return FAIL("expandedXOptional must be %s when dropPadMode is %lld, got %d-D",
                        dropPadMode == 1 ? "3-D [E, C, H]" : "2-D [rows, H]", (long long)dropPadMode, x->ndim);
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
        int64_t sn;
        if (!op_mul_ok(scales->dims[0], scales->dims[1], &sn) || sn != n)
            return FAIL("scalesOptional has %lld * %lld elements, expandedRowIdx %lld: they must be equal",
                        (long long)scales->dims[0], (long long)scales->dims[1], (long long)n);
        k = scales->dims[1];
        if (bias != NULL) {
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
        OP_TRY(op_check_shape_of(&op, "gradScalesOut", gradScalesOut, 2, gsd));
    } else if (r != n) {
        return FAIL("gradY dim 0 (%lld) must equal expandedRowIdx length (%lld) without scalesOptional (K = 1)",
                    (long long)r, (long long)n);
    }
    const aclTensor *gx = gradExpandedXOut;
    int64_t gx_rows = gx->dims[0];
    if (gx->ndim == 3 && !op_mul_ok(gx->dims[0], gx->dims[1], &gx_rows)) gx_rows = -1;
    if (gx_rows != rows || gx->dims[gx->ndim - 1] != h)
        return FAIL("gradExpandedXOut must hold %lld rows of %lld (2-D, or 3-D [E, C, H]), got %d-D with %lld rows of "
                    "%lld",
                    (long long)rows, (long long)h, gx->ndim, (long long)gx_rows, (long long)gx->dims[gx->ndim - 1]);
    MoeGradIndexRule rule = {"expandedRowIdx", 0, n, 0, 0, rows};
    if (dropPadMode == 1) rule = (MoeGradIndexRule){"expandedRowIdx", 0, rows, 1, 0, rows};
    return moe_grad_scatter_create(&op, h_args, gradY, expandedRowIdx, scales, scales != NULL ? x : NULL, bias,
                                   experts, r, k, rule, scales != NULL, workspaceSize, executor);
}

aclnnStatus aclnnMoeFinalizeRoutingV2Grad(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                          aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeFinalizeRoutingV2Grad");
}
