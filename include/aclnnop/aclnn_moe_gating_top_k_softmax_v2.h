/* aclnn-moe: aclnnMoeGatingTopKSoftmaxV2 (CANN's aclnnop/aclnn_moe_gating_top_k_softmax_v2.h). */
#ifndef ACLNNOP_ACLNN_MOE_GATING_TOP_K_SOFTMAX_V2_H_
#define ACLNNOP_ACLNN_MOE_GATING_TOP_K_SOFTMAX_V2_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* x [N, E] or [B, S, E] fp16/bf16/fp32; finishedOptional [N] or [B, S] bool; renorm 0 (softmax then top-k) or 1
 * (top-k then softmax); yOut [..., k] x dtype; expertIdxOut [..., k] int32; softmaxResultOutOptional x-shaped fp32,
 * written when outputSoftmaxResultFlag (renorm 0). */
ACLNN_API aclnnStatus aclnnMoeGatingTopKSoftmaxV2GetWorkspaceSize(const aclTensor *x,
                                                                  const aclTensor *finishedOptional, int64_t k,
                                                                  int64_t renorm, bool outputSoftmaxResultFlag,
                                                                  const aclTensor *yOut, const aclTensor *expertIdxOut,
                                                                  const aclTensor *softmaxResultOutOptional,
                                                                  uint64_t *workspaceSize, aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeGatingTopKSoftmaxV2(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                                  aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_GATING_TOP_K_SOFTMAX_V2_H_ */
