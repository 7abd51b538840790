/*
 * aclnnMoeGatingTopKSoftmaxV2: softmax then top-k (renorm 0, optionally writing the fp32 softmax), or top-k of the
 * logits then softmax over the k values (renorm 1); the row kernel is MoeGatingTopKSoftmax's
 * (moe_gating_top_k_softmax_rows.h), with the same numerics.
 *
 * Validation is the generated op's (tiling failures 561002, moe_gating_top_k_softmax_v2_tiling_base.cpp): x 2-D
 * or 3-D, its last dim positive (leading dims may be 0: no rows), no dim above INT32_MAX; finishedOptional bool of
 * shape x.shape[:-1]; 1 <= k <= E, k <= 1024; renorm 0 or 1; with renorm 0 and outputSoftmaxResultFlag the
 * softmax output must be given, float32 and x-shaped (all 561002, as documented). With renorm 1 or the flag false
 * softmaxResultOutOptional is ignored (neither checked nor written).
 */
#include "aclnnop/aclnn_moe_gating_top_k_softmax_v2.h"
#include "moe_gating_top_k_softmax_rows.h"

#define GTS2_MAX_K 1024
#define GTS2_MAX_DIM 2147483647LL

static const aclDataType GTS2_BOOL_TYPE[] = {ACL_BOOL, ACL_DT_UNDEFINED};

aclnnStatus aclnnMoeGatingTopKSoftmaxV2GetWorkspaceSize(const aclTensor *x, const aclTensor *finishedOptional,
                                                        int64_t k, int64_t renorm, bool outputSoftmaxResultFlag,
                                                        const aclTensor *yOut, const aclTensor *expertIdxOut,
                                                        const aclTensor *softmaxResultOutOptional,
                                                        uint64_t *workspaceSize, aclOpExecutor **executor)
{
    enum { X, FINISHED, Y_OUT, IDX_OUT, SM_OUT };
    static const OpParamSpec params[] = {
        [X] = {"x", OP_IN, OP_FLOAT_TYPES, OP_NO_REF, OP_RANK(2) | OP_RANK(3)},
        [FINISHED] = {"finishedOptional", OP_IN | OP_OPTIONAL, GTS2_BOOL_TYPE, OP_NO_REF, OP_RANK(1) | OP_RANK(2)},
        [Y_OUT] = {"yOut", OP_OUT, OP_FLOAT_TYPES, X, 0},
        [IDX_OUT] = {"expertIdxOut", OP_OUT, OP_INT32_TYPE, OP_NO_REF, 0},
        [SM_OUT] = {"softmaxResultOutOptional", OP_OUT | OP_OPTIONAL, NULL, OP_NO_REF, 0},
    };
    static const OpSpec op = OP_SPEC("aclnnMoeGatingTopKSoftmaxV2", ACLNN_ERR_INNER_TILING_ERROR, params);
    const int softmax = renorm == 0 && outputSoftmaxResultFlag;
    const void *h[] = {x, finishedOptional, yOut, expertIdxOut, softmax ? softmaxResultOutOptional : NULL};
    OP_TRY(op_check_params(&op, h, 0));

    /* 561002: the tiling's rules, in its order (CheckInShape, k, renorm, the outputs) */
    for (int d = 0; d < x->ndim; d++) {
        if (d == x->ndim - 1 && x->dims[d] == 0) return op_fail_shape(&op, "x's last dim (the expert count) is 0");
        if (x->dims[d] > GTS2_MAX_DIM)
            return op_fail_shape(&op, "x dim %d (%lld) exceeds %lld", d, (long long)x->dims[d], GTS2_MAX_DIM);
    }
    if (finishedOptional) {
        if (finishedOptional->ndim != x->ndim - 1)
            return op_fail_shape(&op, "finishedOptional must be %d-D (the shape of x without its last dim), got "
                                 "%d-D", x->ndim - 1, finishedOptional->ndim);
        for (int d = 0; d < x->ndim - 1; d++)
            if (finishedOptional->dims[d] != x->dims[d])
                return op_fail_shape(&op, "finishedOptional dim %d (%lld) must equal x dim %d (%lld)", d,
                                     (long long)finishedOptional->dims[d], d, (long long)x->dims[d]);
    }
    const int64_t e = x->dims[x->ndim - 1];
    if (k <= 0 || k > e)
        return op_fail_shape(&op, "k (%lld) must be greater than 0 and at most the expert count %lld", (long long)k,
                             (long long)e);
    if (k > GTS2_MAX_K) return op_fail_shape(&op, "k (%lld) must not exceed %d", (long long)k, GTS2_MAX_K);
    if (renorm != 0 && renorm != 1)
        return op_fail_shape(&op, "renorm (%lld) must be 0 (softmax, then top-k) or 1 (top-k, then softmax)",
                             (long long)renorm);
    int64_t oshape[3];
    for (int d = 0; d < x->ndim - 1; d++) oshape[d] = x->dims[d];
    oshape[x->ndim - 1] = k;
    OP_TRY(op_check_shape_of(&op, "yOut", yOut, x->ndim, oshape));
    OP_TRY(op_check_shape_of(&op, "expertIdxOut", expertIdxOut, x->ndim, oshape));
    if (softmax) {
        if (softmaxResultOutOptional == NULL)
            return op_fail_shape(&op, "softmaxResultOutOptional must be given when renorm is 0 and "
                                 "outputSoftmaxResultFlag is true");
        if (softmaxResultOutOptional->dtype != ACL_FLOAT)
            return op_fail_shape(&op, "softmaxResultOutOptional must be float32, got %s",
                                 acl_host_dtype_name(softmaxResultOutOptional->dtype));
        OP_TRY(op_check_shape_of(&op, "softmaxResultOutOptional", softmaxResultOutOptional, x->ndim, x->dims));
    }
    aclTensor v;
    if (!op_view2d(x, x->ndim - 1, &v) || !op_view2d(yOut, x->ndim - 1, &v) ||
        !op_view2d(expertIdxOut, x->ndim - 1, &v) ||
        (softmax && !op_view2d(softmaxResultOutOptional, x->ndim - 1, &v)))
        return op_fail_param("aclnnMoeGatingTopKSoftmaxV2", "a strided view whose leading dims cannot be merged "
                             "into one is not supported");

    GtsParams p;
    memset(&p, 0, sizeof p);
    p.rows = acl_host_numel(x) / e;
    p.e = e;
    p.k = k;
    p.renorm = (int)renorm;
    p.has_finished = finishedOptional != NULL;
    p.has_softmax = softmax;
    return op_create_executor(&op, h, gts_run, &p, sizeof p, gts_workspace(&p), workspaceSize, executor);
}

aclnnStatus aclnnMoeGatingTopKSoftmaxV2(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                        aclrtStream stream)
{
    return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnMoeGatingTopKSoftmaxV2");
}
