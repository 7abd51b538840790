/*
 * The row kernel shared by aclnnMoeGatingTopKSoftmax and aclnnMoeGatingTopKSoftmaxV2 (moe_gating_top_k_softmax.c),
 * on the shared math unit (op_math.h): per row of E fp32 scores
 *   renorm 0: s = exp(x - max) * (1 / sum), sum left to right; y, idx = the top-k of s (ties: lower expert)
 *   renorm 1: y, idx = the top-k of x; y = softmax over those k values
 *   finished[row] -> idx[row, :] = E;  rowIdx[row, j] = j*rows + row (V1);  softmax result (V2, renorm 0)
 * y is stored in x's dtype: fp16 nearest-even, bf16 nearest with ties away from zero (the kernels' CAST_ROUND).
 */
#ifndef ACLNN_MOE_GATING_TOP_K_SOFTMAX_ROWS_H_
#define ACLNN_MOE_GATING_TOP_K_SOFTMAX_ROWS_H_

#include "op_common.h"

typedef struct {
    int64_t rows, e, k;
    int renorm;
    int has_finished, has_row_idx, has_softmax;
} GtsParams;

/* workspace bytes of gts_run for these parameters */
uint64_t gts_workspace(const GtsParams *p);
/* the kernel of both operators: inputs {x, finished}, outputs {y, expertIdx, rowIdx or softmaxResult} */
aclnnStatus gts_run(aclOpExecutor *ex, void *ws, uint64_t wsSize);

#endif /* ACLNN_MOE_GATING_TOP_K_SOFTMAX_ROWS_H_ */
