/*
 * aclnnMoeInitRoutingV3 (what torch_npu's npu_moe_init_routing_v2 runs): sort the (token, slot) pairs by expert,
 * keep those whose expert lies in the active range [start, end), and gather (and optionally int8-quantise) the token
 * rows in that order.
 *
 *   fe = expertIdx.reshape(-1), p = i*K + k;  order = stable argsort of fe over the range (ties -> lower p)
 *   avail = #pairs with start <= fe < end
 *   expandedRowIdxOut: rowIdxType 0 [order[j]] = j (j < avail), -1 for pairs out of range;
 *                      rowIdxType 1 [j] = order[j] (j < avail), the rest -1 (the NPU leaves them unwritten)
 *   dropless: expandedXOut[j] = q(x[order[j] // K]) for j < min(rows, avail), rows = N*K (activeNum -1/0) or
 *             min(activeNum, N*K); rows past avail are zero here (unwritten by the NPU)
 *   drop/pad: the pos-th pair of expert e (pos < C) goes to slot e*C + pos; dropped pairs get -1; empty slots zero
 *   expertTokensCountOrCumsumOut (int64, when expertTokensNumFlag): type 0 inclusive cumsum over the range, type 1
 *             counts, type 2 [expertNum, 2] rows (expert id, count) for the experts of the range with tokens, in
 *             ascending id order, then zero rows; drop/pad: counts before the capacity cut
 *   q: quantMode -1 none (expandedScaleOut[j] = scale[token] when scaleOptional [N] is given); 0 static
 *      int8(rint(x*scale + offset)) in fp32; 1 dynamic: xs = x * smooth (scale [1, H] or [end-start, H] by expert),
 *      s = max|xs| / 127, int8(rint(xs / s)), expandedScaleOut[j] = s (0 for empty rows)
 *
 * Numerics from the A2/A3 kernels (ops-transformer moe/moe_init_routing_v3/op_kernel): static quantisation is
 * computed in fp32 (moe_v3_gather_static_quant.h: Muls/Adds on fp32, CAST_RINT) although the UT golden computes it
 * in fp16 -- we follow the kernel; dynamic quantisation rounds ties to even (CAST_RINT to int32) as the kernel's
 * main path does, which the golden's np.round matches. (The kernel's path for rows wider than its unified buffer,
 * H above about 9000 on A2, truncates to fp16 and rounds ties away from zero: not modelled, ties only differ.)
 * An all-zero row gives s = 0 and q = 0.
 *
 * Status codes: this is a hand-written op_api operator, so its tiling (shape and attribute) failures surface as
 * 561103 (the l0 op returns nullptr, CHECK_RET -> ACLNN_ERR_INNER_NULLPTR) although its doc says 561002; 161001 for
 * the six required tensors; 161002 for dtypes (the A2/A3 op_api leaves dtypes to the tiling, the 950 op_api checks
 * them with 161002: we check them up front with 161002 on every target). Host choices beyond CANN's checks:
 * expert ids must lie in [0, expertNum) (the doc's rule; 161002 from the kernel, before anything is written);
 * quantMode 0/1 need an int8 expandedXOut; in quantMode -1 an expandedXOut dtype other than x's (CANN does not
 * check it and its kernel would copy x's bytes past the end of the buffer, as the official example does with an
 * fp32 x and an int8 output) converts the values (nearest even, int8 saturating); expandedScaleOut is checked
 * whenever it is written (dynamic quantisation without scaleOptional too). The fp8 / MX / HiF8 / INT4 quant modes
 * of Ascend 950 are refused (561103, as the A2/A3 tiling does).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "aclnnop/aclnn_moe_init_routing_v3.h"
#include "init_routing_common.h"

#define V3_EXPERT_END_MAX 10240    /* tiling EXPERT_IDX_MAX */
#define V3_KV_EXPERT_END_MAX 5120  /* key_value mode: EXPERT_IDX_MAX / 2 */

typedef struct {
    int64_t n, k, h, total;
    int64_t rows;       /* rows of expandedXOut viewed 2-D (dropless: firstDim; drop/pad: E*C) */
    int64_t capacity;   /* drop/pad only, else 0 */
    int64_t e_num, start, end;
    int64_t count_type; /* 0 cumsum, 1 count, 2 key_value; -1: no count output */
    int64_t quant;
    int scatter, convert, has_scale;
} V3Params;

static const aclDataType V3_X_TYPES[] = {ACL_FLOAT16, ACL_BF16, ACL_FLOAT, ACL_INT8, ACL_DT_UNDEFINED};
static const aclDataType V3_INT8_TYPE[] = {ACL_INT8, ACL_DT_UNDEFINED};
static const aclDataType V3_INT64_TYPE[] = {ACL_INT64, ACL_DT_UNDEFINED};

static aclnnStatus v3_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    static const char *api = "aclnnMoeInitRoutingV3";
    const V3Params *p = ex->params;
    const aclTensor *x = ex->inputs[0], *scale = ex->inputs[2], *offset = ex->inputs[3];
    const aclTensor *counts = ex->outputs[2], *scale_out = ex->outputs[3];
    const int64_t range = p->end - p->start;
    (void)wsSize; /* phase 2 guarantees the planned workspace (op_common.h) */
    IrcSortSpec spec = {p->total, p->k, p->start, p->end, 1, p->e_num};
    IrcSorted s;
    OP_TRY(irc_sort(api, ex->inputs[1], &spec, ws, &s));

    if (p->count_type >= 0) {
        const int64_t len = acl_host_numel(counts);
        int64_t *c = s.tmp; /* free until irc_write_row_idx; holds at least N*K entries, counts may be longer */
        int64_t *heap = NULL;
        if (len > p->total) c = heap = calloc((size_t)len, sizeof(int64_t));
        if (!c) return acl_host_error(ACLNN_ERR_RUNTIME_ERROR, "%s: out of host memory", api);
        memset(c, 0, (size_t)len * sizeof(int64_t));
        if (p->count_type == 2) {
            int64_t row = 0;
            for (int64_t e = 0; e < range; e++)
                if (s.count[e] > 0) {
                    c[2 * row] = p->start + e;
                    c[2 * row + 1] = s.count[e];
                    row++;
                }
        } else {
            int64_t acc = 0;
            for (int64_t e = 0; e < range; e++) {
                acc += s.count[e];
                c[e] = p->count_type == 0 ? acc : s.count[e];
            }
        }
        op_write_all_i64(counts, c);
        free(heap);
    }
    irc_write_row_idx(ex->outputs[1], &s, p->scatter, p->capacity);

    IrcRows w = {0};
    aclTensor out2d;
    if (!op_view2d(ex->outputs[0], ex->outputs[0]->ndim - 1, &out2d))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: expandedXOut view cannot be read as 2-D", api);
    w.out = &out2d;
    w.x = x;
    w.rows_total = p->rows;
    w.h = p->h;
    w.k = p->k;
    w.sorted = &s;
    w.capacity = p->capacity;
    w.rows_valid = p->rows;
    if (p->quant == -1) {
        w.mode = p->convert ? IRC_ROWS_CONVERT : IRC_ROWS_COPY;
        w.row_scale = scale;
        w.scale_out = p->has_scale ? scale_out : NULL;
    } else if (p->quant == 0) {
        w.mode = IRC_ROWS_STATIC_F32;
        w.scale = op_load_f(ACL_FLOAT, op_ptr2(scale, 0, 0));
        w.offset = op_load_f(ACL_FLOAT, op_ptr2(offset, 0, 0));
    } else {
        w.mode = IRC_ROWS_DYNAMIC_EVEN;
        w.smooth = scale;
        w.smooth_base = p->start;
        w.scale_out = scale_out;
    }
    return irc_write_rows(&w, ex->api);
}

aclnnStatus aclnnMoeInitRoutingV3GetWorkspaceSize(const aclTensor *x, const aclTensor *expertIdx,
                                                  const aclTensor *scaleOptional, const aclTensor *offsetOptional,
                                                  int64_t activeNum, int64_t expertCapacity, int64_t expertNum,
                                                  int64_t dropPadMode, int64_t expertTokensNumType,
                                                  bool expertTokensNumFlag, int64_t quantMode,
                                                  const aclIntArray *activeExpertRangeOptional, int64_t rowIdxType,
                                                  const aclTensor *expandedXOut, const aclTensor *expandedRowIdxOut,
                                                  const aclTensor *expertTokensCountOrCumsumOut,
                                                  const aclTensor *expandedScaleOut, uint64_t *workspaceSize,
                                                  aclOpExecutor **executor)
{
    enum { X, EXPERT_IDX, SCALE, OFFSET, RANGE, X_OUT, ROW_IDX_OUT, COUNT_OUT, SCALE_OUT };
    static const OpParamSpec params[] = {
        [X] = {"x", OP_IN, V3_X_TYPES, OP_NO_REF, 0},
        [EXPERT_IDX] = {"expertIdx", OP_IN, OP_INT32_TYPE, OP_NO_REF, 0},
        [SCALE] = {"scaleOptional", OP_IN | OP_OPTIONAL, OP_FLOAT32_TYPE, OP_NO_REF, 0},
        [OFFSET] = {"offsetOptional", OP_IN | OP_OPTIONAL, OP_FLOAT32_TYPE, OP_NO_REF, 0},
        [RANGE] = {"activeExpertRangeOptional", OP_INT_ARRAY | OP_OPTIONAL, NULL, OP_NO_REF, 0},
        [X_OUT] = {"expandedXOut", OP_OUT, V3_X_TYPES, OP_NO_REF, 0},
        [ROW_IDX_OUT] = {"expandedRowIdxOut", OP_OUT, OP_INT32_TYPE, OP_NO_REF, 0},
        [COUNT_OUT] = {"expertTokensCountOrCumsumOut", OP_OUT, V3_INT64_TYPE, OP_NO_REF, 0},
        [SCALE_OUT] = {"expandedScaleOut", OP_OUT, OP_FLOAT32_TYPE, OP_NO_REF, 0},
    };
    /* hand-written op_api: tiling (shape and attribute) failures are ACLNN_ERR_INNER_NULLPTR */
    static const OpSpec op = OP_SPEC("aclnnMoeInitRoutingV3", ACLNN_ERR_INNER_NULLPTR, params);
    const char *api = op.api;
    const aclTensor *scale = scaleOptional, *offset = offsetOptional, *counts = expertTokensCountOrCumsumOut;
    const void *hd[] = {x, expertIdx, scale, offset, activeExpertRangeOptional, expandedXOut, expandedRowIdxOut,
                        counts, expandedScaleOut};
    OP_TRY(op_check_params(&op, hd, 0));
    if (quantMode == 0 || quantMode == 1) OP_TRY(op_check_dtype(api, "expandedXOut", expandedXOut, V3_INT8_TYPE));

    /* 561103: attributes, in the order of the official tiling's CheckAttr */
    const int drop = dropPadMode == 1;
    if (dropPadMode != 0 && dropPadMode != 1)
        return op_fail_shape(&op, "dropPadMode must be 0 or 1, got %lld", (long long)dropPadMode);
    if (!drop && activeNum < -1) return op_fail_shape(&op, "activeNum must be >= -1, got %lld", (long long)activeNum);
    if (expertNum <= 0) return op_fail_shape(&op, "expertNum must be > 0, got %lld", (long long)expertNum);
    int64_t start = 0, end = expertNum;
    OP_TRY(op_read_range(&op, "activeExpertRangeOptional", activeExpertRangeOptional, &start, &end));
    const int64_t n = x->ndim >= 1 ? x->dims[0] : 0;
    if (drop) {
        if (expertCapacity <= 0 || expertCapacity > n)
            return op_fail_shape(&op, "expertCapacity must be in (0, N] = (0, %lld] when dropPadMode is 1, got %lld",
                           (long long)n, (long long)expertCapacity);
        if (rowIdxType == 1) return op_fail_shape(&op, "rowIdxType must be 0 when dropPadMode is 1, got 1");
        if (start != 0 || end != expertNum)
            return op_fail_shape(&op, "activeExpertRangeOptional must be [0, expertNum] = [0, %lld] when dropPadMode is 1, "
                           "got [%lld, %lld]", (long long)expertNum, (long long)start, (long long)end);
    }
    if (expertTokensNumType < 0 || expertTokensNumType > 2)
        return op_fail_shape(&op, "expertTokensNumType must be 0 (cumsum), 1 (count) or 2 (key_value), got %lld",
                       (long long)expertTokensNumType);
    if (drop && expertTokensNumFlag && expertTokensNumType != 1)
        return op_fail_shape(&op, "expertTokensNumType must be 1 (count) when dropPadMode is 1 and expertTokensNumFlag is "
                       "true, got %lld", (long long)expertTokensNumType);
    if (start < 0) return op_fail_shape(&op, "activeExpertRangeOptional start must be >= 0, got %lld", (long long)start);
    if (start >= end)
        return op_fail_shape(&op, "activeExpertRangeOptional start (%lld) must be less than its end (%lld)",
                       (long long)start, (long long)end);
    if (end > expertNum)
        return op_fail_shape(&op, "activeExpertRangeOptional end (%lld) must not exceed expertNum (%lld)", (long long)end,
                       (long long)expertNum);
    const int64_t end_max = expertTokensNumType == 2 ? V3_KV_EXPERT_END_MAX : V3_EXPERT_END_MAX;
    if (end > end_max)
        return op_fail_shape(&op, "activeExpertRangeOptional end (%lld) must not exceed %lld%s", (long long)end,
                       (long long)end_max, expertTokensNumType == 2 ? " in key_value mode" : "");
    if (quantMode < -1 || quantMode > 1)
        return op_fail_shape(&op, "quantMode must be -1 (none), 0 (static int8) or 1 (dynamic int8), got %lld%s",
                       (long long)quantMode, quantMode > 1 ? " (the fp8/MX/HiF8/INT4 modes of Ascend 950 are not "
                                                             "supported by the host runtime)" : "");
    if (rowIdxType != 0 && rowIdxType != 1)
        return op_fail_shape(&op, "rowIdxType must be 0 (gather) or 1 (scatter), got %lld", (long long)rowIdxType);

    /* 561103: input shapes (CheckInputShape) */
    if (x->ndim != 2) return op_fail_shape(&op, "x must be 2-D [N, H], got %d-D", x->ndim);
    if (expertIdx->ndim != 2) return op_fail_shape(&op, "expertIdx must be 2-D [N, K], got %d-D", expertIdx->ndim);
    if (expertIdx->dims[0] != n)
        return op_fail_shape(&op, "x dim 0 (%lld) must equal expertIdx dim 0 (%lld)", (long long)n,
                       (long long)expertIdx->dims[0]);
    const int64_t k = expertIdx->dims[1], h = x->dims[1], range = end - start;
    int64_t total, slots = 0;
    if (!op_mul_ok(n, k, &total) || total > INT32_MAX)
        return op_fail_shape(&op, "N*K (%lld*%lld) must fit the int32 expandedRowIdxOut", (long long)n,
                             (long long)k);
    if (drop && !op_mul_ok(expertNum, expertCapacity, &slots))
        return op_fail_shape(&op, "expertNum * expertCapacity (%lld * %lld) overflows", (long long)expertNum,
                             (long long)expertCapacity);
    const int64_t active = activeNum == 0 || activeNum == -1 ? total : (activeNum < total ? activeNum : total);
    if (quantMode == -1 && scale) {
        const int64_t d[1] = {n};
        OP_TRY(op_check_shape_of(&op, "scaleOptional", scale, 1, d));
    }
    if (quantMode == 0) {
        if (!scale) return op_fail_shape(&op, "scaleOptional must be given when quantMode is 0 (static)");
        if (!offset) return op_fail_shape(&op, "offsetOptional must be given when quantMode is 0 (static)");
        const int64_t one[1] = {1};
        OP_TRY(op_check_shape_of(&op, "scaleOptional", scale, 1, one));
        OP_TRY(op_check_shape_of(&op, "offsetOptional", offset, 1, one));
    }
    if (quantMode == 1 && scale) {
        if (scale->ndim != 2) return op_fail_shape(&op, "scaleOptional must be 2-D when quantMode is 1, got %d-D", scale->ndim);
        if (scale->dims[0] != range && scale->dims[0] != 1)
            return op_fail_shape(&op, "scaleOptional dim 0 must be 1 or end - start (%lld), got %lld", (long long)range,
                           (long long)scale->dims[0]);
        if (scale->dims[1] != h)
            return op_fail_shape(&op, "scaleOptional dim 1 must be H (%lld), got %lld", (long long)h,
                           (long long)scale->dims[1]);
    }

    /* 561103: output shapes (CheckOutShape) */
    const int64_t rows = drop ? slots : active;
    if (drop) {
        const int64_t d[3] = {expertNum, expertCapacity, h};
        OP_TRY(op_check_shape_of(&op, "expandedXOut", expandedXOut, 3, d));
    } else {
        const int64_t d[2] = {active, h};
        OP_TRY(op_check_shape_of(&op, "expandedXOut", expandedXOut, 2, d));
    }
    const int64_t nk[1] = {total};
    OP_TRY(op_check_shape_of(&op, "expandedRowIdxOut", expandedRowIdxOut, 1, nk));
    if (expertTokensNumFlag) {
        if (expertTokensNumType == 2) {
            const int64_t d[2] = {expertNum, 2};
            OP_TRY(op_check_shape_of(&op, "expertTokensCountOrCumsumOut", counts, 2, d));
        } else {
            const int64_t d[1] = {range};
            OP_TRY(op_check_shape_of(&op, "expertTokensCountOrCumsumOut", counts, 1, d));
        }
    }
    const int writes_scale = quantMode == 1 || (quantMode == -1 && scale);
    if (writes_scale) {
        const int64_t d[1] = {rows};
        OP_TRY(op_check_shape_of(&op, "expandedScaleOut", expandedScaleOut, 1, d));
    }
    /* CheckDtype's rule on attributes */
    if (x->dtype == ACL_INT8 && quantMode != -1)
        return op_fail_shape(&op, "x of dtype int8 cannot be quantised (quantMode must be -1, got %lld)",
                       (long long)quantMode);
    aclTensor v;
    if (!op_view2d(expandedXOut, expandedXOut->ndim - 1, &v))
        return op_fail_param(api, "expandedXOut: dims 0 and 1 of this strided view cannot be merged into one");

    V3Params p = {n, k, h, total, rows, drop ? expertCapacity : 0, expertNum, start, end,
                  expertTokensNumFlag ? expertTokensNumType : -1, quantMode, rowIdxType == 1,
                  quantMode == -1 && expandedXOut->dtype != x->dtype, scale != NULL};
    return op_create_executor(&op, hd, v3_kernel, &p, sizeof p, irc_sort_ws_bytes(total, range), workspaceSize,
                              executor);
}

aclnnStatus aclnnMoeInitRoutingV3(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                  aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeInitRoutingV3");
}
