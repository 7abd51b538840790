/*
 * aclnnMoeInitRoutingV2: sort the (token, slot) pairs by expert and gather the token rows in that order.
 *
 *   fe    = expertIdx.reshape(-1)               p = i*K + k (row-major)
 *   order = stable_argsort(fe)                  ties -> lower p
 * dropless (dropPadMode 0):
 *   expandedRowIdxOut[order[j]] = j             for every j (row-major "scatter" index, == token_permute's)
 *   expandedXOut[j] = x[order[j] // K]          for j < rows, rows = N*K if activeNum == 0 else min(activeNum, N*K)
 *   expertTokensCountOrCumsumOut = histogram(fe, expertNum) (flag 2) or its inclusive cumsum (flag 1)
 * drop/pad (dropPadMode 1):
 *   within expert e, the pos-th pair in sorted order is kept when pos < C: slot = e*C + pos,
 *   expandedRowIdxOut[p] = slot, expandedXOut[e, pos] = x[p // K]; dropped pairs get expandedRowIdxOut[p] = -1;
 *   slots with no pair are zero-filled; expertTokensBeforeCapacityOut = histogram(fe, expertNum) (flag set).
 * As in the official tiling, the count/cumsum output is ignored in drop/pad mode and the before-capacity output in
 * dropless mode (neither checked nor written).
 * Data checks (before anything is written): negative expert ids are rejected; ids >= expertNum are rejected
 * whenever expertNum bounds them (drop/pad mode or a count output), as the documentation requires.
 * Validation follows the A2/A3 tiling (moe_init_routing_v2_tiling.cpp): expertIdx must be 2-D and activeNum >= 0
 * (the 910_95 tiling also accepts a 1-D expertIdx and a negative activeNum; not modelled here).
 */
#include "aclnnop/aclnn_moe_init_routing_v2.h"
#include "init_routing_common.h"

typedef struct {
    int64_t n, k, h;         /* x [N, H], expertIdx [N, K] */
    int64_t rows;            /* dropless: rows of expandedXOut */
    int64_t capacity, expert_num;
    int64_t drop_pad;        /* 0 / 1 */
    int64_t count_flag;      /* 0 none, 1 cumsum, 2 count (0 in drop/pad mode) */
    int before_flag;         /* drop/pad only */
} InitRoutingV2Params;

static int init_routing_v2_bounded(const InitRoutingV2Params *p) { return p->drop_pad == 1 || p->count_flag != 0; }

static uint64_t init_routing_v2_ws(const InitRoutingV2Params *p)
{
    return irc_sort_ws_bytes(p->n * p->k, init_routing_v2_bounded(p) ? p->expert_num : 0);
}

/* the sort, the index layouts and the row gather are shared with MoeInitRoutingV3 / QuantV2
 * (init_routing_common.h) */
static aclnnStatus init_routing_v2_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    (void)wsSize; /* scratch is sized by ex->workspace_size (see op_common.h), never by the caller's claim */
    static const char *api = "aclnnMoeInitRoutingV2";
    const InitRoutingV2Params *p = ex->params;
    const int bounded = init_routing_v2_bounded(p);
    const IrcSortSpec spec = {p->n * p->k, p->k, 0, bounded ? p->expert_num : 0, bounded, p->expert_num};
    IrcSorted s;
    OP_TRY(irc_sort(api, ex->inputs[1], &spec, ws, &s));
    const aclTensor *counts = p->count_flag ? ex->outputs[2] : p->before_flag ? ex->outputs[3] : NULL;
    if (counts) {
        int64_t acc = 0;
        for (int64_t e = 0; e < p->expert_num; e++) {
            acc += s.count[e];
            op_store_i(ACL_INT32, op_ptr2(counts, e, 0), p->count_flag == 1 ? acc : s.count[e]);
        }
    }
    const int64_t capacity = p->drop_pad == 1 ? p->capacity : 0;
    irc_write_row_idx(ex->outputs[1], &s, 0, capacity);
    aclTensor out2d;
    if (!op_view2d(ex->outputs[0], ex->outputs[0]->ndim - 1, &out2d))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: expandedXOut view cannot be read as 2-D", api);
    IrcRows w = {0};
    w.mode = IRC_ROWS_COPY;
    w.x = ex->inputs[0];
    w.out = &out2d;
    w.rows_total = p->drop_pad == 1 ? p->expert_num * p->capacity : p->rows;
    w.h = p->h;
    w.k = p->k;
    w.sorted = &s;
    w.capacity = capacity;
    w.rows_valid = w.rows_total;
    return irc_write_rows(&w, ex->api);
}


aclnnStatus aclnnMoeInitRoutingV2GetWorkspaceSize(const aclTensor *x, const aclTensor *expertIdx,
                                                  int64_t activeNumOptional, int64_t expertCapacityOptional,
                                                  int64_t expertNumOptional, int64_t dropPadModeOptional,
                                                  int64_t expertTokensCountOrCumsumFlagOptional,
                                                  bool expertTokensBeforeCapacityFlagOptional,
                                                  const aclTensor *expandedXOut, const aclTensor *expandedRowIdxOut,
                                                  const aclTensor *expertTokensCountOrCumsumOutOptional,
                                                  const aclTensor *expertTokensBeforeCapacityOutOptional,
                                                  uint64_t *workspaceSize, aclOpExecutor **executor)
{
    enum { X, EXPERT_IDX, X_OUT, ROW_IDX_OUT, COUNT_OUT, BEFORE_OUT };
    static const OpParamSpec params[] = {
        [X] = {"x", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, 0},
        [EXPERT_IDX] = {"expertIdx", OP_IN, OP_INT32_TYPE, OP_NO_REF, 0},
        [X_OUT] = {"expandedXOut", OP_OUT, NULL, X, 0},
        [ROW_IDX_OUT] = {"expandedRowIdxOut", OP_OUT, OP_INT32_TYPE, OP_NO_REF, 0},
        [COUNT_OUT] = {"expertTokensCountOrCumsumOutOptional", OP_OUT | OP_OPTIONAL, OP_INT32_TYPE, OP_NO_REF, 0},
        [BEFORE_OUT] = {"expertTokensBeforeCapacityOutOptional", OP_OUT | OP_OPTIONAL, OP_INT32_TYPE, OP_NO_REF, 0},
    };
    /* hand-written op_api: shape and attribute failures are ACLNN_ERR_INNER_NULLPTR (spec/host-vs-cann.md) */
    static const OpSpec op = OP_SPEC("aclnnMoeInitRoutingV2", ACLNN_ERR_INNER_NULLPTR, params);
    const int64_t active = activeNumOptional, cap = expertCapacityOptional, e_num = expertNumOptional;
    const int64_t mode = dropPadModeOptional, flag = expertTokensCountOrCumsumFlagOptional;
    /* which optional outputs the mode actually produces (the official tiling resets the other flag): the other is
     * neither checked nor bound */
    const int want_count = mode == 0 && flag != 0;
    const int want_before = mode == 1 && expertTokensBeforeCapacityFlagOptional;
    const aclTensor *count_out = want_count ? expertTokensCountOrCumsumOutOptional : NULL;
    const aclTensor *before_out = want_before ? expertTokensBeforeCapacityOutOptional : NULL;
    const void *h[] = {x, expertIdx, expandedXOut, expandedRowIdxOut, count_out, before_out};
    OP_TRY(op_check_params(&op, h, (want_count ? 1u << COUNT_OUT : 0) | (want_before ? 1u << BEFORE_OUT : 0)));

    /* shapes and attributes: the official tiling GetShapeAttrsInfo, in its order -> 561103 */
    if (x->ndim != 2) return op_fail_shape(&op, "x must be 2-D [N, H], got %d-D", x->ndim);
    if (expertIdx->ndim < 1 || x->dims[0] != expertIdx->dims[0])
        return op_fail_shape(&op, "x dim 0 (%lld) must equal expertIdx dim 0 (%lld)", (long long)x->dims[0],
                             (long long)(expertIdx->ndim >= 1 ? expertIdx->dims[0] : -1));
    if (cap < 0) return op_fail_shape(&op, "expertCapacity (%lld) must not be negative", (long long)cap);
    if (e_num < 0) return op_fail_shape(&op, "expertNum (%lld) must not be negative", (long long)e_num);
    if (mode < 0 || mode > 1) return op_fail_shape(&op, "dropPadMode must be 0 or 1, got %lld", (long long)mode);
    if (mode == 1 && (cap < 1 || e_num < 1))
        return op_fail_shape(&op, "expertCapacity (%lld) and expertNum (%lld) must be positive when dropPadMode is 1",
                             (long long)cap, (long long)e_num);
    if (flag < 0 || flag > 2)
        return op_fail_shape(&op, "expertTokensCountOrCumsumFlag must be 0, 1 or 2, got %lld", (long long)flag);
    if (flag > 0 && e_num <= 0)
        return op_fail_shape(&op, "expertNum must be positive when expertTokensCountOrCumsumFlag is %lld",
                             (long long)flag);
    if (mode == 1 && cap > x->dims[0])
        return op_fail_shape(&op, "expertCapacity (%lld) must not exceed the number of tokens N (%lld)",
                             (long long)cap, (long long)x->dims[0]);
    if (active < 0) return op_fail_shape(&op, "activeNum (%lld) must not be negative", (long long)active);
    if (expertIdx->ndim != 2) return op_fail_shape(&op, "expertIdx must be 2-D [N, K], got %d-D", expertIdx->ndim);

    const int64_t n_tok = x->dims[0], h_dim = x->dims[1], k = expertIdx->dims[1];
    int64_t total, slots;
    if (!op_mul_ok(n_tok, k, &total) || total > INT32_MAX)
        return op_fail_shape(&op, "N*K (%lld*%lld) must fit the int32 expandedRowIdxOut", (long long)n_tok,
                             (long long)k);
    if (mode == 1 && !op_mul_ok(e_num, cap, &slots))
        return op_fail_shape(&op, "expertNum * expertCapacity (%lld * %lld) overflows", (long long)e_num,
                             (long long)cap);
    if (e_num > INT32_MAX)
        return op_fail_shape(&op, "expertNum (%lld) must fit int32", (long long)e_num);
    int64_t rows = active == 0 ? total : (active < total ? active : total);
    if (mode == 1) {
        const int64_t dims[3] = {e_num, cap, h_dim};
        OP_TRY(op_check_shape_of(&op, "expandedXOut", expandedXOut, 3, dims));
    } else {
        const int64_t dims[2] = {rows, h_dim};
        OP_TRY(op_check_shape_of(&op, "expandedXOut", expandedXOut, 2, dims));
    }
    const int64_t idx_dims[1] = {total};
    OP_TRY(op_check_shape_of(&op, "expandedRowIdxOut", expandedRowIdxOut, 1, idx_dims));
    const int64_t e_dims[1] = {e_num};
    if (want_count) OP_TRY(op_check_shape_of(&op, "expertTokensCountOrCumsumOutOptional", count_out, 1, e_dims));
    if (want_before) OP_TRY(op_check_shape_of(&op, "expertTokensBeforeCapacityOutOptional", before_out, 1, e_dims));
    aclTensor v;
    if (!op_view2d(expandedXOut, expandedXOut->ndim - 1, &v))
        return op_fail_param(op.api, "expandedXOut: dims 0 and 1 of this strided view cannot be merged into one");

    InitRoutingV2Params p = {n_tok, k, h_dim, rows, cap, e_num, mode, want_count ? flag : 0, want_before};
    return op_create_executor(&op, h, init_routing_v2_kernel, &p, sizeof p, init_routing_v2_ws(&p), workspaceSize,
                              executor);
}

aclnnStatus aclnnMoeInitRoutingV2(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                  aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeInitRoutingV2");
}
