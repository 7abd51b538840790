/*
 * The combine step shared by aclnnMoeTokenUnpermute and aclnnMoeTokenUnpermuteWithRoutingMap (paddedMode false),
 * implemented in moe_token_unpermute.c:
 *
 *   for t in [0, T): acc = 0 (fp32)
 *     for k ascending: d = idx[t*K + k]
 *       if 0 <= d < rows and (prob == NULL or prob[t*K + k] != 0): acc += float(permuted[d]) * prob
 *     out[t] = RNE(acc)                      (every dtype accumulates in fp32, as the NPU kernels do)
 *
 * Rows outside [0, rows) are skipped as the NPU kernels skip them (rows dropped by numOutTokens, -1 slots);
 * callers reject the indices the NPU would read out of bounds before calling this.
 */
#ifndef ACLNN_MOE_UNPERMUTE_ROWS_H_
#define ACLNN_MOE_UNPERMUTE_ROWS_H_

#include "op_common.h"

typedef struct {
    const aclTensor *permuted; /* [rows, H] */
    const aclTensor *out;      /* [T, H] */
    const int64_t *idx;        /* [T*K] */
    const float *prob;         /* NULL or [T*K] */
    int64_t t, k, h, rows;
} UnpermuteRows;

/* workspace bytes for the combine of T tokens of H elements (per-thread fp32 rows) */
uint64_t moe_unpermute_rows_workspace(int64_t t, int64_t h);
/* runs the combine in parallel over the tokens; `scratch` holds moe_unpermute_rows_workspace(t, h) bytes */
void moe_unpermute_rows(const UnpermuteRows *u, void *scratch, uint64_t scratch_bytes);

#endif /* ACLNN_MOE_UNPERMUTE_ROWS_H_ */
