/* aclnn-moe: aclnnMoeTokenUnpermuteWithEp (CANN's aclnnop/aclnn_moe_token_unpermute_with_ep.h). */
#ifndef ACLNNOP_ACLNN_MOE_TOKEN_UNPERMUTE_WITH_EP_H_
#define ACLNNOP_ACLNN_MOE_TOKEN_UNPERMUTE_WITH_EP_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* permutedTokens [rows, H] fp16/bf16/fp32; sortedIndices [T*K] int32; probsOptional [T, K] fp16/bf16/fp32;
 * rangeOptional [start, end]; restoreShapeOptional NULL or [T, H]; out [T, H] permutedTokens dtype. */
ACLNN_API aclnnStatus aclnnMoeTokenUnpermuteWithEpGetWorkspaceSize(const aclTensor *permutedTokens,
                                                                   const aclTensor *sortedIndices,
                                                                   const aclTensor *probsOptional, int64_t numTopk,
                                                                   const aclIntArray *rangeOptional, bool paddedMode,
                                                                   const aclIntArray *restoreShapeOptional,
                                                                   const aclTensor *out, uint64_t *workspaceSize,
                                                                   aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeTokenUnpermuteWithEp(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                                   aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_TOKEN_UNPERMUTE_WITH_EP_H_ */
