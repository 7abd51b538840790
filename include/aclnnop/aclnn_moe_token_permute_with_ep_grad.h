/* aclnn-moe: aclnnMoeTokenPermuteWithEpGrad (CANN's aclnnop/aclnn_moe_token_permute_with_ep_grad.h). */
#ifndef ACLNNOP_ACLNN_MOE_TOKEN_PERMUTE_WITH_EP_GRAD_H_
#define ACLNNOP_ACLNN_MOE_TOKEN_PERMUTE_WITH_EP_GRAD_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* permutedTokensOutputGrad [range length, H] fp16/bf16/fp32 (the rows of window [start, end); the doc's
 * [(end-start)*K, H] is accepted too, only its first end-start rows are read); sortedIndices [T*K] int32 (as
 * MoeTokenPermuteWithEp returns it); permutedProbsOutputGradOptional [range length] (or the doc's length times K);
 * rangeOptional [start, end] (NULL: MoeTokenPermuteGrad, probs ignored); paddedMode false only;
 * tokenGradOut [T, H], probsGradOut [T, K] (written when the probs grad is given). */
ACLNN_API aclnnStatus aclnnMoeTokenPermuteWithEpGradGetWorkspaceSize(const aclTensor *permutedTokensOutputGrad,
                                                                     const aclTensor *sortedIndices,
                                                                     const aclTensor *permutedProbsOutputGradOptional,
                                                                     int64_t numTopk, const aclIntArray *rangeOptional,
                                                                     bool paddedMode, const aclTensor *tokenGradOut,
                                                                     const aclTensor *probsGradOut,
                                                                     uint64_t *workspaceSize, aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeTokenPermuteWithEpGrad(void *workspace, uint64_t workspaceSize,
                                                     aclOpExecutor *executor, aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_TOKEN_PERMUTE_WITH_EP_GRAD_H_ */
