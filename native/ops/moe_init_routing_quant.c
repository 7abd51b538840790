/*
 * aclnnMoeInitRoutingQuant: MoeInitRouting (V1 layout) with the gathered rows quantised to int8.
 *
 *   fe = expertIdx.flatten(), fr = rowIdx.flatten(), order = stable argsort(fe)   (p = i*K + k, ties -> lower p)
 *   expandedExpertIdxOut[j] = fe[order[j]];  expandedRowIdxOut[fr[order[j]]] = j
 *   expandedXOut[j] = int8(rint(fp16(fp16(x[fr[order[j]] % N]) * fp16(scale)) + fp16(offset)))
 *                     for j < min(N, activeNum) * K
 *
 * Numerics from the kernel (ops-transformer moe/moe_init_routing_quant/op_kernel/moe_quant_gather_out.h): x is cast
 * to fp16 (bf16 through fp32), multiplied and offset in fp16 arithmetic by the attributes cast float -> half, and
 * cast to int8 with CAST_RINT (ties to even, saturating); the golden (x.astype(float16) * scale + offset, np.rint,
 * clip) computes the same. The attributes are `double` in the prototype and float in the op definition.
 * Data checks as MoeInitRouting: expertIdx in (-2^24, 2^24], rowIdx a permutation of [0, N*K) (161002).
 * A generated operator: shape and attribute failures are 561002.
 */
#include "aclnnop/aclnn_moe_init_routing_quant.h"
#include "init_routing_common.h"

typedef struct {
    int64_t n, k, h, active_rows; /* active_rows = min(N, activeNum) * K */
    float scale, offset;
} QuantParams;

static aclnnStatus quant_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    static const char *api = "aclnnMoeInitRoutingQuant";
    const QuantParams *p = ex->params;
    (void)wsSize; /* phase 2 guarantees the planned workspace (op_common.h) */
    if (p->n * p->k == 0) return ACLNN_SUCCESS;
    const int64_t *src;
    OP_TRY(irc_v1_route(api, ex->inputs[1], ex->inputs[2], ws, ex->outputs[1], ex->outputs[2], &src));
    IrcRows w = {0};
    w.mode = IRC_ROWS_STATIC_F16;
    w.x = ex->inputs[0];
    w.out = ex->outputs[0];
    w.rows_total = p->active_rows;
    w.h = p->h;
    w.k = p->k;
    w.v1_src = src;
    w.scale = p->scale;
    w.offset = p->offset;
    return irc_write_rows(&w, ex->api);
}

aclnnStatus aclnnMoeInitRoutingQuantGetWorkspaceSize(const aclTensor *x, const aclTensor *rowIdx,
                                                     const aclTensor *expertIdx, int64_t activeNum, double scale,
                                                     double offset, const aclTensor *expandedXOut,
                                                     const aclTensor *expandedRowIdxOut,
                                                     const aclTensor *expandedExpertIdxOut, uint64_t *workspaceSize,
                                                     aclOpExecutor **executor)
{
    enum { X, ROW_IDX, EXPERT_IDX, X_OUT, ROW_IDX_OUT, EXPERT_IDX_OUT };
    static const aclDataType int8_type[] = {ACL_INT8, ACL_DT_UNDEFINED};
    static const OpParamSpec params[] = {
        [X] = {"x", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, 0},
        [ROW_IDX] = {"rowIdx", OP_IN, OP_INT32_TYPE, OP_NO_REF, 0},
        [EXPERT_IDX] = {"expertIdx", OP_IN, OP_INT32_TYPE, OP_NO_REF, 0},
        [X_OUT] = {"expandedXOut", OP_OUT, int8_type, OP_NO_REF, 0},
        [ROW_IDX_OUT] = {"expandedRowIdxOut", OP_OUT, OP_INT32_TYPE, OP_NO_REF, 0},
        [EXPERT_IDX_OUT] = {"expandedExpertIdxOut", OP_OUT, OP_INT32_TYPE, OP_NO_REF, 0},
    };
    /* a generated operator: tiling failures are ACLNN_ERR_INNER_TILING_ERROR */
    static const OpSpec op = OP_SPEC("aclnnMoeInitRoutingQuant", ACLNN_ERR_INNER_TILING_ERROR, params);
    const char *api = op.api;
    const void *hd[] = {x, rowIdx, expertIdx, expandedXOut, expandedRowIdxOut, expandedExpertIdxOut};
    OP_TRY(op_check_params(&op, hd, 0));

    /* 561002: the official tiling's GetShapeAttrsInfo, then CheckOutShape */
    OP_TRY(op_check_ndim(api, "x", x, 2));
    OP_TRY(op_check_ndim(api, "rowIdx", rowIdx, 2));
    if (expertIdx->ndim != 2 || rowIdx->dims[0] != expertIdx->dims[0] || rowIdx->dims[1] != expertIdx->dims[1])
        return op_fail_shape(&op, "rowIdx shape [%lld, %lld] must equal the shape of expertIdx (%d-D)",
                              (long long)rowIdx->dims[0], (long long)rowIdx->dims[1], expertIdx->ndim);
    const int64_t n = x->dims[0], h = x->dims[1], k = expertIdx->dims[1];
    if (expertIdx->dims[0] != n)
        return op_fail_shape(&op, "expertIdx dim 0 (%lld) must equal the rows of x (%lld)",
                              (long long)expertIdx->dims[0], (long long)n);
    if (activeNum < 0) return op_fail_shape(&op, "activeNum (%lld) must be >= 0", (long long)activeNum);
    OP_TRY(op_check_ndim(api, "expandedXOut", expandedXOut, 2));
    OP_TRY(op_check_ndim(api, "expandedRowIdxOut", expandedRowIdxOut, 1));
    if (expandedExpertIdxOut->ndim != 1 || expandedExpertIdxOut->dims[0] != expandedRowIdxOut->dims[0])
        return op_fail_shape(&op, "expandedExpertIdxOut must have the shape of expandedRowIdxOut [%lld]",
                              (long long)expandedRowIdxOut->dims[0]);
    int64_t total;
    if (!op_mul_ok(n, k, &total) || total > INT32_MAX)
        return op_fail_shape(&op, "N*K (%lld*%lld) must fit the int32 expandedRowIdxOut", (long long)n, (long long)k);
    const int64_t active_rows = (activeNum < n ? activeNum : n) * k;
    const int64_t xo[2] = {active_rows, h}, nk[1] = {n * k};
    OP_TRY(op_check_shape_of(&op, "expandedXOut", expandedXOut, 2, xo));
    OP_TRY(op_check_shape_of(&op, "expandedRowIdxOut", expandedRowIdxOut, 1, nk));

    QuantParams p = {n, k, h, active_rows, (float)scale, (float)offset};
    return op_create_executor(&op, hd, quant_kernel, &p, sizeof p, irc_v1_ws_bytes(total), workspaceSize, executor);
}

aclnnStatus aclnnMoeInitRoutingQuant(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                     aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeInitRoutingQuant");
}
