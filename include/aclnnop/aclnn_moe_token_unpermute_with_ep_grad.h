/* aclnn-moe: aclnnMoeTokenUnpermuteWithEpGrad (CANN's aclnnop/aclnn_moe_token_unpermute_with_ep_grad.h). */
#ifndef ACLNNOP_ACLNN_MOE_TOKEN_UNPERMUTE_WITH_EP_GRAD_H_
#define ACLNNOP_ACLNN_MOE_TOKEN_UNPERMUTE_WITH_EP_GRAD_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* unpermutedTokensGrad [T, H] fp16/bf16/fp32; sortedIndices [T*K] int32; permutedTokensOptional [rows, H]
 * (the forward's permutedTokens, required with probsOptional); probsOptional [T, K] (any float dtype);
 * paddedMode false only; restoreShapeOptional NULL; rangeOptional [start, end]; topkNum = K without probs;
 * permutedTokensGradOut [T*K, H] or [rows, H], unpermutedTokensGrad dtype; probsGradOut [T, K] probs dtype. */
ACLNN_API aclnnStatus aclnnMoeTokenUnpermuteWithEpGradGetWorkspaceSize(
    const aclTensor *unpermutedTokensGrad, const aclTensor *sortedIndices, const aclTensor *permutedTokensOptional,
    const aclTensor *probsOptional, bool paddedMode, const aclIntArray *restoreShapeOptional,
    const aclIntArray *rangeOptional, int64_t topkNum, const aclTensor *permutedTokensGradOut,
    const aclTensor *probsGradOut, uint64_t *workspaceSize, aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeTokenUnpermuteWithEpGrad(void *workspace, uint64_t workspaceSize,
                                                       aclOpExecutor *executor, aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_TOKEN_UNPERMUTE_WITH_EP_GRAD_H_ */
