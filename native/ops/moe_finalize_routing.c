/*
 * aclnnMoeFinalizeRouting (V1) and aclnnMoeFinalizeRoutingV2: combine the expert outputs of every token.
 *
 *   out[i, :] = x1[i] + x2[i] + sum_{k=0}^{K-1} scales[i, k] * (expandedX[R[p(i, k)], :] + bias[expertIdx[i, k], :])
 *
 * with the index position p(i, k) = k*N + i (k-major: dropPadMode 0 and 1, and always in V1) or i*K + k (row-major:
 * dropPadMode 2 and 3). In modes 1/3 expandedX is [E, C, H], addressed as flat rows e*C + c, and R may hold -1 for
 * a dropped slot.
 *
 * Dropped slots (R = -1, modes 1/3): like the NPU kernel (OT moe_finalize_routing_v2_fp_db.h: Duplicate(0) and the
 * add is skipped), the slot contributes NOTHING, the bias is not added either. The official goldens (torch doc
 * "equivalent logic" and the OPP/OT test gen_data) instead read row 0 and add scales*(0 + bias): that is a
 * discrepancy between the goldens and the kernel (spec/semantics.md 3(b), 9.1); we follow the kernel.
 * A -1 in modes 0/2 is undefined on the NPU (stale data or skip): the host runtime rejects it.
 *
 * Optional inputs (V2): no x1 and no x2 -> the sum starts from 0; x2 without x1 is rejected; no scales -> scale 1
 * and K = 1; no bias -> no bias term and expertIdx is not read (nor range-checked).
 *
 * Numerics (spec/semantics.md 3(f)):
 *  - fp32: computed in fp32, in the kernel's op order: t = x + bias; t = t * s; acc = acc + t (k ascending).
 *  - fp16: the NPU computes NATIVELY IN FP16 (its kernels contain no Cast): acc = x1 + x2 rounded to fp16, then per
 *    k: t = fp16(x + bias), t = fp16(t * s), acc = fp16(acc + t). We reproduce that: every op is done in fp32 and
 *    rounded to fp16 (RNE) at once. fp32 has 24 >= 2*11 + 2 significand bits, so this double rounding equals
 *    correctly rounded fp16 arithmetic, bit for bit.
 *  - bf16: computed in fp32 (scales read as float, fp32 scales accepted: the doc's "mixed precision"), one RNE
 *    rounding on the final store. V2 uses CAST_RINT (RNE). V1's bf16 kernel uses CAST_ROUND, whose exact rounding is
 *    [unconfirmed] (believed half away from zero); the host runtime uses RNE for V1 too, so V1 bf16 may differ from
 *    the NPU by one ulp on exact ties.
 *
 * Index checks happen in the kernel before anything is written: a row index outside [0, rows) (modes 0/2, V1) or
 * outside [-1, E*C) (modes 1/3), and, when bias is given, an expert id outside [0, E) -> ACLNN_ERR_PARAM_INVALID.
 *
 * Implementation: rows are split over the thread pool. Rows with contiguous columns (the usual case, K <= 64) go
 * through op_row_weighted_sum (op_common.c: the K source rows of a token walked in lockstep, AVX-512 or AVX2/F16C
 * when available); other layouts are done in fp32 tiles on the stack (finalize_row_tiles). Both perform the same
 * operations in the same order, so the results are identical bit for bit (-DACLNN_MOE_NO_X86_SIMD builds the
 * portable paths only).
 */
/* the operation order above is part of the result (fp16 rounds after every op; fp32/bf16 must match the
 * reference bit for bit): never let the compiler fuse a multiply and an add into one FMA */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "aclnnop/aclnn_moe_finalize_routing.h"
#include "aclnnop/aclnn_moe_finalize_routing_v2.h"
#include "op_common.h"

#define FIN_TILE 1024 /* columns per tile of the strided path: accumulators live on the stack (12 KB) */

typedef struct {
    int64_t mode; /* dropPadMode 0..3 (V1: 0) */
    int64_t N, K, H;
    int64_t rows;   /* rows of expandedX seen as [rows, H] (N*K in modes 0/2, E*C in 1/3) */
    int64_t C;      /* capacity (modes 1/3: expandedX is [E, C, H]); 0 otherwise */
    int64_t E;      /* experts: bias.dim0 (0 if no bias) */
    int v1;
} FinalizeParams;

typedef struct {
    const FinalizeParams *p;
    const aclTensor *X, *R, *x1, *x2, *bias, *scales, *eidx, *out;
} FinalizeCtx;

/* ---- generic (any dtype, any column stride) helpers ---------------------------------------------------------- */

/* address of element (row, 0) of expandedX seen as [rows, H] */
static inline const char *x_row(const FinalizeCtx *c, int64_t row)
{
    const aclTensor *X = c->X;
    int64_t off = X->offset;
    if (X->ndim == 3) off += (row / c->p->C) * X->strides[0] + (row % c->p->C) * X->strides[1];
    else off += row * X->strides[0];
    return (const char *)X->data + off * op_elem_size(X);
}

/* one k-term on a tile: t and u are fp32 copies of the x row and bias row (u NULL: no bias) */
static void term_generic(float *acc, float *t, const float *u, float s, int64_t n, int fp16)
{
    if (fp16) {
        for (int64_t j = 0; j < n; j++) {
            float v = t[j];
            if (u) v = op_r16(v + u[j]);
            v = op_r16(v * s);
            acc[j] = op_r16(acc[j] + v);
        }
    } else {
        for (int64_t j = 0; j < n; j++) {
            float v = t[j];
            if (u) v += u[j];
            v *= s;
            acc[j] += v;
        }
    }
}

static inline int64_t idx_pos(const FinalizeParams *p, int64_t i, int64_t k)
{
    return (p->mode == 0 || p->mode == 1) ? k * p->N + i : i * p->K + k;
}

/* The indices are validated before any row is written, then read again row by row; `out` may share memory with
 * them (a caller error that makes the values meaningless): the bounds keep such a call from reading outside
 * expandedX and bias. On validated data they never change a value. */
static inline int64_t finalize_row_index(const FinalizeCtx *c, int64_t i, int64_t k)
{
    const int64_t r = op_load_i(c->R->dtype, op_ptr2(c->R, idx_pos(c->p, i, k), 0));
    return (uint64_t)r < (uint64_t)c->p->rows ? r : -1;
}
static inline int64_t finalize_expert(const FinalizeCtx *c, int64_t i, int64_t k)
{
    const int64_t e = op_load_i(c->eidx->dtype, op_ptr2(c->eidx, i, k));
    return (uint64_t)e < (uint64_t)c->p->E ? e : 0;
}

/* output row i with strided columns (or more than OP_ROW_MAX_TERMS terms), tile by tile through fp32 buffers */
static void finalize_row_tiles(const FinalizeCtx *c, int64_t i)
{
    const FinalizeParams *p = c->p;
    const aclDataType dt = c->X->dtype;
    const int fp16 = (dt == ACL_FLOAT16);
    const int64_t es = op_elem_size(c->X);
    const int64_t xcs = op_row_stride(c->X), bcs = c->bias ? op_row_stride(c->bias) : 1;
    float acc[FIN_TILE], t[FIN_TILE], u[FIN_TILE];

    for (int64_t j0 = 0; j0 < p->H; j0 += FIN_TILE) {
        const int64_t n = (p->H - j0 < FIN_TILE) ? p->H - j0 : FIN_TILE;
        /* initial value: x1 + x2 (rounded to fp16 for fp16), x1, or 0 */
        if (c->x1) {
            op_load_seg_f32(dt, op_ptr2(c->x1, i, j0), op_row_stride(c->x1), n, acc);
            if (c->x2) {
                op_load_seg_f32(dt, op_ptr2(c->x2, i, j0), op_row_stride(c->x2), n, t);
                if (fp16) for (int64_t j = 0; j < n; j++) acc[j] = op_r16(acc[j] + t[j]);
                else for (int64_t j = 0; j < n; j++) acc[j] += t[j];
            }
        } else {
            memset(acc, 0, (size_t)n * sizeof(float));
        }
        for (int64_t k = 0; k < p->K; k++) {
            const int64_t r = finalize_row_index(c, i, k);
            if (r < 0) continue; /* -1: dropped slot (modes 1/3, validated) contributes nothing */
            op_load_seg_f32(dt, x_row(c, r) + j0 * xcs * es, xcs, n, t);
            if (c->bias) op_load_seg_f32(dt, op_ptr2(c->bias, finalize_expert(c, i, k), j0), bcs, n, u);
            const float s = c->scales ? op_load_f(c->scales->dtype, op_ptr2(c->scales, i, k)) : 1.0f;
            term_generic(acc, t, c->bias ? u : NULL, s, n, fp16);
        }
        /* store (fp16 values are already exact fp16; bf16 rounds RNE here) */
        op_store_seg_f32(dt, op_ptr2(c->out, i, j0), op_row_stride(c->out), n, acc);
    }
}

static void finalize_rows(void *vctx, int64_t begin, int64_t end)
{
    const FinalizeCtx *c = vctx;
    const FinalizeParams *p = c->p;
    const int contiguous = op_row_stride(c->X) == 1 && (!c->bias || op_row_stride(c->bias) == 1) &&
                           (!c->x1 || op_row_stride(c->x1) == 1) && (!c->x2 || op_row_stride(c->x2) == 1) &&
                           op_row_stride(c->out) == 1 && p->K <= OP_ROW_MAX_TERMS;
    for (int64_t i = begin; i < end; i++) {
        if (!contiguous) {
            finalize_row_tiles(c, i);
            continue;
        }
        OpRowTerm T[OP_ROW_MAX_TERMS];
        int64_t n = 0;
        for (int64_t k = 0; k < p->K; k++) {
            const int64_t r = finalize_row_index(c, i, k);
            if (r < 0) continue; /* -1: dropped slot (modes 1/3, validated) contributes nothing */
            T[n].x = x_row(c, r);
            T[n].bias = c->bias ? op_ptr2(c->bias, finalize_expert(c, i, k), 0) : NULL;
            T[n].scale = c->scales ? op_load_f(c->scales->dtype, op_ptr2(c->scales, i, k)) : 1.0f;
            n++;
        }
        /* fp16 is native fp16 arithmetic on the NPU (see the numerics above) */
        op_row_weighted_sum(c->X->dtype, 1, op_ptr2(c->out, i, 0), c->x1 ? op_ptr2(c->x1, i, 0) : NULL,
                            c->x2 ? op_ptr2(c->x2, i, 0) : NULL, T, n, p->H);
    }
}

static aclnnStatus finalize_kernel(aclOpExecutor *ex, void *ws, uint64_t wsSize)
{
    (void)ws;
    (void)wsSize;
    const FinalizeParams *p = ex->params;
    FinalizeCtx c;
    c.p = p;
    if (p->v1) {
        /* V1 prototype order: expandedX, x1, x2Optional, bias, scales, expandedRowIdx, expandedExpertIdx */
        c.X = ex->inputs[0]; c.x1 = ex->inputs[1]; c.x2 = ex->inputs[2]; c.bias = ex->inputs[3];
        c.scales = ex->inputs[4]; c.R = ex->inputs[5]; c.eidx = ex->inputs[6];
    } else {
        /* V2: expandedX, expandedRowIdx, x1Optional, x2Optional, biasOptional, scalesOptional, expertIdxOptional */
        c.X = ex->inputs[0]; c.R = ex->inputs[1]; c.x1 = ex->inputs[2]; c.x2 = ex->inputs[3];
        c.bias = ex->inputs[4]; c.scales = ex->inputs[5]; c.eidx = ex->inputs[6];
    }
    c.out = ex->outputs[0];
    const char *api = p->v1 ? "aclnnMoeFinalizeRouting" : "aclnnMoeFinalizeRoutingV2";

    /* index checks, before anything is written */
    const int64_t NK = p->N * p->K;
    const int dropmode = (p->mode == 1 || p->mode == 3);
    for (int64_t q = 0; q < NK; q++) {
        const int64_t r = op_load_i(c.R->dtype, op_ptr2(c.R, q, 0));
        if (r >= p->rows || r < (dropmode ? -1 : 0)) {
            if (dropmode)
                return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                      "%s: expandedRowIdx[%lld] = %lld is outside [-1, %lld) (E*C rows of expandedX, "
                                      "-1 = dropped)", api, (long long)q, (long long)r, (long long)p->rows);
            return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                  "%s: expandedRowIdx[%lld] = %lld is outside [0, %lld) (rows of expandedX)", api,
                                  (long long)q, (long long)r, (long long)p->rows);
        }
    }
    if (c.bias) {
        for (int64_t i = 0; i < p->N; i++)
            for (int64_t k = 0; k < p->K; k++) {
                const int64_t e = op_load_i(c.eidx->dtype, op_ptr2(c.eidx, i, k));
                if (e < 0 || e >= p->E)
                    return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                          "%s: %s[%lld, %lld] = %lld is outside [0, %lld) (experts of bias)", api,
                                          p->v1 ? "expandedExpertIdx" : "expertIdxOptional", (long long)i,
                                          (long long)k, (long long)e, (long long)p->E);
            }
    }
    if (p->N == 0 || p->H == 0) return ACLNN_SUCCESS;
    /* K + 2 rows of H elements are read or written per output row; divided one factor at a time (no overflow) */
    int64_t grain = OP_PARALLEL_MIN_WORK / p->H / (p->K + 2);
    if (grain < 1) grain = 1;
    acl_host_parallel_for(p->N, grain, finalize_rows, &c);
    return ACLNN_SUCCESS;
}


/* ------------------------------------------------------------------------------------------------------------ */
/* V2                                                                                                            */

aclnnStatus aclnnMoeFinalizeRoutingV2GetWorkspaceSize(const aclTensor *expandedX, const aclTensor *expandedRowIdx,
                                                      const aclTensor *x1Optional, const aclTensor *x2Optional,
                                                      const aclTensor *biasOptional, const aclTensor *scalesOptional,
                                                      const aclTensor *expertIdxOptional, int64_t dropPadMode,
                                                      const aclTensor *out, uint64_t *workspaceSize,
                                                      aclOpExecutor **executor)
{
    enum { X, ROW_IDX, X1, X2, BIAS, SCALES, EXPERT_IDX, OUT };
    static const OpParamSpec params[] = {
        [X] = {"expandedX", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2) | OP_RANK(3)},
        [ROW_IDX] = {"expandedRowIdx", OP_IN, OP_INT32_TYPE, OP_NO_REF, OP_RANK(1)},
        [X1] = {"x1Optional", OP_IN | OP_OPTIONAL, NULL, X, OP_RANK(2)},
        [X2] = {"x2Optional", OP_IN | OP_OPTIONAL, NULL, X, OP_RANK(2)},
        [BIAS] = {"biasOptional", OP_IN | OP_OPTIONAL, NULL, X, OP_RANK(2)},
        /* the dtype of expandedX, or fp32 with bf16 expandedX ("mixed precision") */
        [SCALES] = {"scalesOptional", OP_IN | OP_OPTIONAL | OP_OR_F32_WITH_BF16, NULL, X, OP_RANK(2)},
        [EXPERT_IDX] = {"expertIdxOptional", OP_IN | OP_OPTIONAL, OP_INT32_TYPE, OP_NO_REF, OP_RANK(2)},
        [OUT] = {"out", OP_OUT, NULL, X, OP_RANK(2)},
    };
    /* hand-written op_api: its shape and attribute failures are ACLNN_ERR_INNER_NULLPTR (spec/host-vs-cann.md) */
    static const OpSpec op = OP_SPEC("aclnnMoeFinalizeRoutingV2", ACLNN_ERR_INNER_NULLPTR, params);
    const void *h[] = {expandedX, expandedRowIdx, x1Optional, x2Optional, biasOptional, scalesOptional,
                       expertIdxOptional, out};
    OP_TRY(op_check_params(&op, h, 0));

    /* shapes and attributes -> 561103 */
    if (dropPadMode < 0 || dropPadMode > 3)
        return op_fail_shape(&op, "dropPadMode (%lld) must be in [0, 3]", (long long)dropPadMode);
    const int drop = (dropPadMode == 1 || dropPadMode == 3);
    int64_t K = 1;
    if (scalesOptional) K = scalesOptional->dims[1];
    if (K == 0) return op_fail_shape(&op, "K (scalesOptional.shape[1]) can not be 0");
    const int64_t NK = expandedRowIdx->dims[0];
    int64_t N;
    if (scalesOptional) {
        N = scalesOptional->dims[0];
        int64_t nk;
        if (!op_mul_ok(N, K, &nk) || nk != NK)
            return op_fail_shape(&op, "expandedRowIdx length (%lld) must equal N*K = %lld*%lld (scalesOptional shape)",
                                  (long long)NK, (long long)N, (long long)K);
    } else {
        N = NK;
    }
    if (expandedX->ndim != (drop ? 3 : 2))
        return op_fail_shape(&op, "expandedX must be %d-D with dropPadMode %lld, got %d-D", drop ? 3 : 2,
                             (long long)dropPadMode, expandedX->ndim);
    const int64_t H = expandedX->dims[expandedX->ndim - 1];
    int64_t rows, C = 0, E = 0;
    if (drop) {
        E = expandedX->dims[0];
        C = expandedX->dims[1];
        if (!op_mul_ok(E, C, &rows))
            return op_fail_shape(&op, "expandedX has too many rows (E*C = %lld*%lld)", (long long)E, (long long)C);
        if (E == 0) return op_fail_shape(&op, "expert count E (expandedX.shape[0]) can not be 0");
    } else {
        rows = expandedX->dims[0];
        if (rows != NK)
            return op_fail_shape(&op, "expandedX.shape[0] (%lld) must equal N*K = %lld (expandedRowIdx length)",
                                  (long long)rows, (long long)NK);
    }
    const int64_t nh[2] = {N, H}, nk[2] = {N, K};
    if (x1Optional) OP_TRY(op_check_shape_of(&op, "x1Optional", x1Optional, 2, nh));
    if (x2Optional && !x1Optional)
        return op_fail_shape(&op, "x2Optional can not be given when x1Optional is not given");
    if (x2Optional) OP_TRY(op_check_shape_of(&op, "x2Optional", x2Optional, 2, nh));
    if (biasOptional) {
        if (!expertIdxOptional)
            return op_fail_shape(&op, "expertIdxOptional must be given when biasOptional is given");
        if (drop && biasOptional->dims[0] != E)
            return op_fail_shape(&op, "biasOptional.shape[0] (%lld) must equal E = expandedX.shape[0] (%lld)",
                                  (long long)biasOptional->dims[0], (long long)E);
        if (biasOptional->dims[1] != H)
            return op_fail_shape(&op, "biasOptional.shape[1] (%lld) must equal H (%lld)",
                                  (long long)biasOptional->dims[1], (long long)H);
        E = biasOptional->dims[0];
        if (E == 0) return op_fail_shape(&op, "expert count E (biasOptional.shape[0]) can not be 0");
        if (E < K)
            return op_fail_shape(&op, "E (%lld) should be larger than or equal to K (%lld)", (long long)E,
                                  (long long)K);
    }
    if (expertIdxOptional) OP_TRY(op_check_shape_of(&op, "expertIdxOptional", expertIdxOptional, 2, nk));
    OP_TRY(op_check_shape_of(&op, "out", out, 2, nh));

    FinalizeParams p = {dropPadMode, N, K, H, rows, C, biasOptional ? E : 0, 0};
    return op_create_executor(&op, h, finalize_kernel, &p, sizeof p, 0, workspaceSize, executor);
}

aclnnStatus aclnnMoeFinalizeRoutingV2(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                      aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeFinalizeRoutingV2");
}

/* ------------------------------------------------------------------------------------------------------------ */
/* V1: x1, bias, scales and expandedExpertIdx required; always k-major (mode 0)                                  */

aclnnStatus aclnnMoeFinalizeRoutingGetWorkspaceSize(const aclTensor *expandedX, const aclTensor *x1,
                                                    const aclTensor *x2Optional, const aclTensor *bias,
                                                    const aclTensor *scales, const aclTensor *expandedRowIdx,
                                                    const aclTensor *expandedExpertIdx, const aclTensor *out,
                                                    uint64_t *workspaceSize, aclOpExecutor **executor)
{
    enum { X, X1, X2, BIAS, SCALES, ROW_IDX, EXPERT_IDX, OUT };
    /* V1 takes scales in the dtype of expandedX (no mixed precision) */
    static const OpParamSpec params[] = {
        [X] = {"expandedX", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2)},
        [X1] = {"x1", OP_IN, NULL, X, OP_RANK(2)},
        [X2] = {"x2Optional", OP_IN | OP_OPTIONAL, NULL, X, OP_RANK(2)},
        [BIAS] = {"bias", OP_IN, NULL, X, OP_RANK(2)},
        [SCALES] = {"scales", OP_IN, NULL, X, OP_RANK(2)},
        [ROW_IDX] = {"expandedRowIdx", OP_IN, OP_INT32_TYPE, OP_NO_REF, OP_RANK(1)},
        [EXPERT_IDX] = {"expandedExpertIdx", OP_IN, OP_INT32_TYPE, OP_NO_REF, OP_RANK(2)},
        [OUT] = {"out", OP_OUT, NULL, X, 0},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeFinalizeRouting", ACLNN_ERR_INNER_TILING_ERROR, params);
    const void *h[] = {expandedX, x1, x2Optional, bias, scales, expandedRowIdx, expandedExpertIdx, out};
    OP_TRY(op_check_params(&op, h, 0));

    /* shapes (tiling) -> 561002 */
    const int64_t N = x1->dims[0], H = expandedX->dims[1], K = scales->dims[1], E = bias->dims[0];
    if (scales->dims[0] != N || expandedExpertIdx->dims[0] != N)
        return op_fail_shape(&op, "x1, scales and expandedExpertIdx must have the same number of rows "
                              "(got %lld, %lld, %lld)", (long long)N, (long long)scales->dims[0],
                              (long long)expandedExpertIdx->dims[0]);
    if (expandedExpertIdx->dims[1] != K)
        return op_fail_shape(&op, "expandedExpertIdx.shape[1] (%lld) must equal scales.shape[1] = K (%lld)",
                              (long long)expandedExpertIdx->dims[1], (long long)K);
    if (E == 0) return op_fail_shape(&op, "expert count E (bias.shape[0]) can not be 0");
    if (K == 0) return op_fail_shape(&op, "K (scales.shape[1]) can not be 0");
    const int64_t nh[2] = {N, H}, eh[2] = {E, H};
    OP_TRY(op_check_shape_of(&op, "x1", x1, 2, nh));
    if (x2Optional) OP_TRY(op_check_shape_of(&op, "x2Optional", x2Optional, 2, nh));
    OP_TRY(op_check_shape_of(&op, "bias", bias, 2, eh));
    if (expandedRowIdx->dims[0] != expandedX->dims[0])
        return op_fail_shape(&op, "expandedRowIdx length (%lld) must equal expandedX.shape[0] (%lld)",
                              (long long)expandedRowIdx->dims[0], (long long)expandedX->dims[0]);
    int64_t NK;
    if (!op_mul_ok(N, K, &NK) || expandedRowIdx->dims[0] != NK)
        return op_fail_shape(&op, "expandedRowIdx length (%lld) must equal N*K = %lld*%lld",
                              (long long)expandedRowIdx->dims[0], (long long)N, (long long)K);
    OP_TRY(op_check_shape_of(&op, "out", out, 2, nh));

    FinalizeParams p = {0, N, K, H, NK, 0, E, 1};
    return op_create_executor(&op, h, finalize_kernel, &p, sizeof p, 0, workspaceSize, executor);
}

aclnnStatus aclnnMoeFinalizeRouting(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                    aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeFinalizeRouting");
}
