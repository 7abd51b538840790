/*
 * The two kernels behind the backward operators of the routing family (libopapi internal).
 *
 * Gather family (MoeTokenPermuteGrad, MoeTokenPermuteWithEpGrad, MoeInitRoutingV2Grad): the forward copied token
 * t = p / K to a destination row d = index[p]; its gradient sums, for every token, the gradient rows its K copies
 * landed in:
 *     out[t] = sum over k of grad[row(index[t*K + k])]           (rows the forward did not write add nothing)
 *     probsOut[p] = probsGrad[row(index[p])] or 0
 * Scatter family (MoeTokenUnpermuteGrad, MoeTokenUnpermuteWithEpGrad, MoeFinalizeRoutingV2Grad): the forward summed
 * scale[p] * (x[row] + bias[expert[p]]) into token t = p / K; its gradient writes each selected row once and
 * reduces a dot product per (token, k):
 *     gradX[row(index[p])] = grad[p / K] * scale[p]              (rows no index selects are zero)
 *     gradScale[p]         = sum_j (x[row][j] + bias[expert[p]][j]) * grad[p / K][j]   (x term 0 for a skipped p)
 *
 * row(v): the index rule says which values are legal and which of them select a row; an illegal value (or, for the
 * scatter family, two indices selecting the same row) is ACLNN_ERR_PARAM_INVALID, reported before anything is
 * written. Arithmetic is fp32, stored with round-to-nearest-even; output rows are split across threads, and every
 * sum has a fixed order (see moe_grad_common.c), so results do not depend on the thread count.
 */
#ifndef ACLNN_MOE_GRAD_COMMON_H_
#define ACLNN_MOE_GRAD_COMMON_H_

#include "op_common.h"

typedef struct {
    const char *name;     /* the index parameter, for messages (a string literal) */
    int64_t lo, hi;       /* legal values: [lo, hi) */
    int allow_drop;       /* -1 is legal too and selects nothing (drop/pad layouts) */
    int64_t wstart, wend; /* values in [wstart, wend) select row value - wstart; other legal values nothing */
} MoeGradIndexRule;

/* sum order of the gather family over k */
enum { MOE_GRAD_SUM_SEQUENTIAL = 0, MOE_GRAD_SUM_TREE = 1 };

/* Both builders create the executor with op_create_executor from the operator's declarative table and handles
 * (prototype order, so aclSetInput/OutputTensorAddr indices are the prototype's); the role arguments (grad,
 * indices, ...) are handles of that array, or NULL for a role the call does not use. out / gradX is the first
 * output entry, probsOut / gradScale the second. The callers have checked every rule (op_check_params and their
 * own shape rules).
 *
 * gather: grad [rows, H] (rank 2, or 3 seen as [E*C, H]); indices 1-D [T*K]; probsGrad 1-D or NULL;
 * out [T, H]; probsOut [T, K] written only with probsGrad. */
aclnnStatus moe_grad_gather_create(const OpSpec *op, const void *const *handles, const aclTensor *grad,
                                   const aclTensor *indices, const aclTensor *probsGrad, int64_t t, int64_t k,
                                   MoeGradIndexRule rule, int sum_order, uint64_t *workspaceSize,
                                   aclOpExecutor **executor);

/* scatter: grad [T, H]; indices 1-D [T*K]; scales [T, K] or NULL (scale 1); x [rows, H] or NULL (needed for
 * gradScale); bias [E, H] with expertIdx [T, K] or both NULL; gradX [rows_out, H] (rank 2 or 3);
 * gradScale [T, K] written when use_gs (scales and x given). */
aclnnStatus moe_grad_scatter_create(const OpSpec *op, const void *const *handles, const aclTensor *grad,
                                    const aclTensor *indices, const aclTensor *scales, const aclTensor *x,
                                    const aclTensor *bias, const aclTensor *expertIdx, int64_t t, int64_t k,
                                    MoeGradIndexRule rule, int use_gs, uint64_t *workspaceSize,
                                    aclOpExecutor **executor);

#endif /* ACLNN_MOE_GRAD_COMMON_H_ */
