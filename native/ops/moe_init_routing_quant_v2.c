/*
 * aclnnMoeInitRoutingQuantV2 (what torch_npu's npu_moe_init_routing_quant runs): MoeInitRoutingV2 with the
 * gathered rows quantised to int8, statically or dynamically per row.
 *
 *   fe = expertIdx.reshape(-1), p = i*K + k;  order = stable argsort of fe (ties -> lower p)
 *   dropless: expandedRowIdxOut[order[j]] = j; expandedXOut[j] = q(x[order[j] // K]) for j < rows,
 *             rows = N*K (activeNum 0) or min(activeNum, N*K); expertTokensCountOrCumsumOutOptional int32
 *             [expertNum]: inclusive cumsum (flag 1) or counts (flag 2)
 *   drop/pad: the pos-th pair of expert e (pos < C) goes to slot e*C + pos, dropped pairs get -1, empty slots are
 *             zero (and their dynamic scale 0); expertTokensBeforeCapacityOutOptional = the counts before the cut
 *   q, quantMode 0 (static): int8(rint(fp16(fp16(x) * fp16(scale[0])) + fp16(offset[0])))
 *   q, quantMode 1 (dynamic): xs = x * smooth (scaleOptional [1, H] or [expertNum, H] by expert id, or none),
 *      s = max|xs| / 127 (dynamicQuantScaleOutOptional), int8(round_half_away(xs / s))
 *
 * Numerics from the A2/A3 kernels (ops-transformer moe/moe_init_routing_quant_v2/op_kernel): static quantisation
 * in fp16 arithmetic with CAST_RINT (moe_v2_gather_quant.h, as the V1 quant op); dynamic quantisation divides in
 * fp32, truncates to fp16 and casts with CAST_ROUND (moe_v2_gather_dynamic_quant.h, moe_v2_fullload_dynamic_quant.h):
 * for |xs / s| <= 127 that is rounding half away from zero (k + 0.5 is exact in fp16 and truncation never crosses
 * it), unlike InitRoutingV3's ties-to-even. An all-zero row gives s = 0 and q = 0.
 * A generated operator: shape and attribute failures are 561002, also for an optional output or scaleOptional that
 * the mode needs but is NULL (the tiling's null checks); 161002 for dtypes. Expert ids must lie in [0, expertNum)
 * whenever expertNum bounds them (drop/pad, a count output, or an [expertNum, H] smooth scale), else be >= 0
 * (161002 from the kernel). An INT4 expandedXOut (in the op definition) is refused: the host runtime implements the
 * int8 output only.
 */
#include "aclnnop/aclnn_moe_init_routing_quant_v2.h"
#include "init_routing_common.h"

typedef struct {
    int64_t n, k, h, total, rows, capacity, e_num;
    int64_t count_flag; /* dropless: 0 none, 1 cumsum, 2 count */
    int before_flag;    /* drop/pad */
    int bounded;
    int64_t quant;
} QuantV2Params;

static aclnnStatus quant_v2_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    static const char *api = "aclnnMoeInitRoutingQuantV2";
    const QuantV2Params *p = ex->params;
    const aclTensor *scale = ex->inputs[2], *offset = ex->inputs[3];
    (void)wsSize; /* phase 2 guarantees the planned workspace (op_common.h) */
    IrcSortSpec spec = {p->total, p->k, 0, p->bounded ? p->e_num : 0, p->bounded, p->e_num};
    IrcSorted s;
    OP_TRY(irc_sort(api, ex->inputs[1], &spec, ws, &s));

    const aclTensor *counts = p->count_flag ? ex->outputs[2] : p->before_flag ? ex->outputs[3] : NULL;
    if (counts) {
        int64_t acc = 0;
        for (int64_t e = 0; e < p->e_num; e++) {
            acc += s.count[e];
            op_store_i(ACL_INT32, op_ptr2(counts, e, 0), p->count_flag == 1 ? acc : s.count[e]);
        }
    }
    irc_write_row_idx(ex->outputs[1], &s, 0, p->capacity);

    aclTensor out2d;
    if (!op_view2d(ex->outputs[0], ex->outputs[0]->ndim - 1, &out2d))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: expandedXOut view cannot be read as 2-D", api);
    IrcRows w = {0};
    w.x = ex->inputs[0];
    w.out = &out2d;
    w.rows_total = p->rows;
    w.h = p->h;
    w.k = p->k;
    w.sorted = &s;
    w.capacity = p->capacity;
    w.rows_valid = p->rows;
    if (p->quant == 0) {
        w.mode = IRC_ROWS_STATIC_F16;
        w.scale = op_load_f(ACL_FLOAT, op_ptr2(scale, 0, 0));
        w.offset = op_load_f(ACL_FLOAT, op_ptr2(offset, 0, 0));
    } else {
        w.mode = IRC_ROWS_DYNAMIC_AWAY;
        w.smooth = scale;
        w.scale_out = ex->outputs[4];
    }
    return irc_write_rows(&w, ex->api);
}

aclnnStatus aclnnMoeInitRoutingQuantV2GetWorkspaceSize(
    const aclTensor *x, const aclTensor *expertIdx, const aclTensor *scaleOptional, const aclTensor *offsetOptional,
    int64_t activeNum, int64_t expertCapacity, int64_t expertNum, int64_t dropPadMode,
    int64_t expertTokensCountOrCumsumFlag, bool expertTokensBeforeCapacityFlag, int64_t quantMode,
    const aclTensor *expandedXOut, const aclTensor *expandedRowIdxOut,
    const aclTensor *expertTokensCountOrCumsumOutOptional, const aclTensor *expertTokensBeforeCapacityOutOptional,
    const aclTensor *dynamicQuantScaleOutOptional, uint64_t *workspaceSize, aclOpExecutor **executor)
{
    enum { X, EXPERT_IDX, SCALE, OFFSET, X_OUT, ROW_IDX_OUT, COUNT_OUT, BEFORE_OUT, SCALE_OUT };
    static const aclDataType int8_type[] = {ACL_INT8, ACL_DT_UNDEFINED};
    static const OpParamSpec params[] = {
        [X] = {"x", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, 0},
        [EXPERT_IDX] = {"expertIdx", OP_IN, OP_INT32_TYPE, OP_NO_REF, 0},
        [SCALE] = {"scaleOptional", OP_IN | OP_OPTIONAL, OP_FLOAT32_TYPE, OP_NO_REF, 0},
        [OFFSET] = {"offsetOptional", OP_IN | OP_OPTIONAL, OP_FLOAT32_TYPE, OP_NO_REF, 0},
        [X_OUT] = {"expandedXOut", OP_OUT, int8_type, OP_NO_REF, 0},
        [ROW_IDX_OUT] = {"expandedRowIdxOut", OP_OUT, OP_INT32_TYPE, OP_NO_REF, 0},
        [COUNT_OUT] = {"expertTokensCountOrCumsumOutOptional", OP_OUT | OP_OPTIONAL, OP_INT32_TYPE, OP_NO_REF, 0},
        [BEFORE_OUT] = {"expertTokensBeforeCapacityOutOptional", OP_OUT | OP_OPTIONAL, OP_INT32_TYPE, OP_NO_REF, 0},
        [SCALE_OUT] = {"dynamicQuantScaleOutOptional", OP_OUT | OP_OPTIONAL, OP_FLOAT32_TYPE, OP_NO_REF, 0},
    };
    /* a generated operator: tiling failures are ACLNN_ERR_INNER_TILING_ERROR */
    static const OpSpec op = OP_SPEC("aclnnMoeInitRoutingQuantV2", ACLNN_ERR_INNER_TILING_ERROR, params);
    const char *api = op.api;
    const aclTensor *scale = scaleOptional, *offset = offsetOptional;
    const aclTensor *count_out = expertTokensCountOrCumsumOutOptional;
    const aclTensor *before_out = expertTokensBeforeCapacityOutOptional;
    const aclTensor *dyn_out = dynamicQuantScaleOutOptional;
    const int64_t active = activeNum, cap = expertCapacity, e_num = expertNum, mode = dropPadMode;
    const int64_t flag = expertTokensCountOrCumsumFlag;
    /* an INT4 expandedXOut (in the op definition) is refused with its own message */
    if (expandedXOut && acl_host_tensor_live(expandedXOut) && expandedXOut->dtype == ACL_INT4)
        return op_fail_param(api, "expandedXOut of dtype int4 is not supported by the host runtime (int8 only)");
    const void *hd[] = {x, expertIdx, scale, offset, expandedXOut, expandedRowIdxOut, count_out, before_out,
                        dyn_out};
    OP_TRY(op_check_params(&op, hd, 0));

    /* 561002: the official tiling, in its order (quantMode, then the InitRoutingV2 base checks) */
    if (quantMode != 0 && quantMode != 1)
        return op_fail_shape(&op, "quantMode must be 0 (static) or 1 (dynamic), got %lld", (long long)quantMode);
    if (x->ndim != 2 || expertIdx->ndim != 2)
        return op_fail_shape(&op, "x and expertIdx must be 2-D, got %d-D and %d-D", x->ndim, expertIdx->ndim);
    if (x->dims[0] != expertIdx->dims[0])
        return op_fail_shape(&op, "x dim 0 (%lld) must equal expertIdx dim 0 (%lld)", (long long)x->dims[0],
                              (long long)expertIdx->dims[0]);
    if (active < 0) return op_fail_shape(&op, "activeNum (%lld) must not be negative", (long long)active);
    if (cap < 0) return op_fail_shape(&op, "expertCapacity (%lld) must not be negative", (long long)cap);
    if (e_num < 0) return op_fail_shape(&op, "expertNum (%lld) must not be negative", (long long)e_num);
    if (mode != 0 && mode != 1) return op_fail_shape(&op, "dropPadMode must be 0 or 1, got %lld", (long long)mode);
    if (mode == 1 && (cap < 1 || e_num < 1))
        return op_fail_shape(&op, "expertCapacity (%lld) and expertNum (%lld) must be positive when dropPadMode is 1",
                              (long long)cap, (long long)e_num);
    if (flag < 0 || flag > 2)
        return op_fail_shape(&op, "expertTokensCountOrCumsumFlag must be 0, 1 or 2, got %lld", (long long)flag);
    if (flag > 0 && e_num <= 0)
        return op_fail_shape(&op, "expertNum must be positive when expertTokensCountOrCumsumFlag is %lld",
                              (long long)flag);
    const int64_t n = x->dims[0], h = x->dims[1], k = expertIdx->dims[1];
    int64_t total, slots = 0;
    if (!op_mul_ok(n, k, &total) || total > INT32_MAX)
        return op_fail_shape(&op, "N*K (%lld*%lld) must fit the int32 expandedRowIdxOut", (long long)n, (long long)k);
    if (mode == 1 && !op_mul_ok(e_num, cap, &slots))
        return op_fail_shape(&op, "expertNum * expertCapacity (%lld * %lld) overflows", (long long)e_num,
                             (long long)cap);
    if (mode == 1 && cap > n)
        return op_fail_shape(&op, "expertCapacity (%lld) must not exceed the number of tokens N (%lld)",
                              (long long)cap, (long long)n);
    /* the tiling resets the flag of the other mode */
    const int64_t count_flag = mode == 0 ? flag : 0;
    const int before_flag = mode == 1 && expertTokensBeforeCapacityFlag;
    const int64_t rows = mode == 1 ? slots : (active == 0 ? total : (active < total ? active : total));
    if (mode == 1) {
        const int64_t d[3] = {e_num, cap, h};
        OP_TRY(op_check_shape_of(&op, "expandedXOut", expandedXOut, 3, d));
    } else {
        const int64_t d[2] = {rows, h};
        OP_TRY(op_check_shape_of(&op, "expandedXOut", expandedXOut, 2, d));
    }
    const int64_t nk[1] = {total}, e_dims[1] = {e_num}, r_dims[1] = {rows};
    OP_TRY(op_check_shape_of(&op, "expandedRowIdxOut", expandedRowIdxOut, 1, nk));
    if (count_flag) {
        if (!count_out)
            return op_fail_shape(&op, "expertTokensCountOrCumsumOutOptional must be given when "
                                  "expertTokensCountOrCumsumFlag is %lld", (long long)count_flag);
        OP_TRY(op_check_shape_of(&op, "expertTokensCountOrCumsumOutOptional", count_out, 1, e_dims));
    }
    if (before_flag) {
        if (!before_out)
            return op_fail_shape(&op, "expertTokensBeforeCapacityOutOptional must be given when "
                                  "expertTokensBeforeCapacityFlag is true in drop/pad mode");
        OP_TRY(op_check_shape_of(&op, "expertTokensBeforeCapacityOutOptional", before_out, 1, e_dims));
    }
    if (quantMode == 1) {
        if (!dyn_out) return op_fail_shape(&op, "dynamicQuantScaleOutOptional must be given when quantMode is 1");
        OP_TRY(op_check_shape_of(&op, "dynamicQuantScaleOutOptional", dyn_out, 1, r_dims));
    }
    const int64_t one[1] = {1};
    if (quantMode == 0) {
        if (!scale) return op_fail_shape(&op, "scaleOptional must be given when quantMode is 0 (static)");
        if (!offset) return op_fail_shape(&op, "offsetOptional must be given when quantMode is 0 (static)");
        OP_TRY(op_check_shape_of(&op, "scaleOptional", scale, 1, one));
        OP_TRY(op_check_shape_of(&op, "offsetOptional", offset, 1, one));
    } else if (scale) {
        if (scale->ndim != 2)
            return op_fail_shape(&op, "scaleOptional must be 2-D [1 or expertNum, H] when quantMode is 1, got %d-D",
                                  scale->ndim);
        if (scale->dims[0] != 1 && scale->dims[0] != e_num)
            return op_fail_shape(&op, "scaleOptional dim 0 must be 1 or expertNum (%lld), got %lld",
                                  (long long)e_num, (long long)scale->dims[0]);
        if (scale->dims[1] != h)
            return op_fail_shape(&op, "scaleOptional dim 1 (%lld) must equal H (%lld)", (long long)scale->dims[1],
                                  (long long)h);
    }
    aclTensor v;
    if (!op_view2d(expandedXOut, expandedXOut->ndim - 1, &v))
        return op_fail_param(api, "expandedXOut: dims 0 and 1 of this strided view cannot be merged into one");

    /* expertNum bounds the ids wherever they index something of that size */
    const int bounded = mode == 1 || count_flag != 0 || (quantMode == 1 && scale && scale->dims[0] != 1);
    QuantV2Params p = {n, k, h, total, rows, mode == 1 ? cap : 0, e_num, count_flag, before_flag, bounded,
                       quantMode};
    /* outputs the mode does not produce are neither checked above nor bound */
    const void *bound[] = {x, expertIdx, scale, offset, expandedXOut, expandedRowIdxOut, count_flag ? count_out : NULL,
                           before_flag ? before_out : NULL, quantMode == 1 ? dyn_out : NULL};
    return op_create_executor(&op, bound, quant_v2_kernel, &p, sizeof p, irc_sort_ws_bytes(total, bounded ? e_num : 0),
                              workspaceSize, executor);
}

aclnnStatus aclnnMoeInitRoutingQuantV2(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                       aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeInitRoutingQuantV2");
}
