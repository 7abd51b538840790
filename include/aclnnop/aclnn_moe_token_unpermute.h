/* aclnn-moe: aclnnMoeTokenUnpermute (CANN's aclnnop/aclnn_moe_token_unpermute.h). */
#ifndef ACLNNOP_ACLNN_MOE_TOKEN_UNPERMUTE_H_
#define ACLNNOP_ACLNN_MOE_TOKEN_UNPERMUTE_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* permutedTokens [rows, H] fp16/bf16/fp32; sortedIndices [T*K] int32; probsOptional [T, K] fp16/bf16/fp32;
 * paddedMode false only; restoreShapeOptional ignored (paddedMode false); out [T, H] permutedTokens dtype. */
ACLNN_API aclnnStatus aclnnMoeTokenUnpermuteGetWorkspaceSize(const aclTensor *permutedTokens,
                                                             const aclTensor *sortedIndices,
                                                             const aclTensor *probsOptional, bool paddedMode,
                                                             const aclIntArray *restoreShapeOptional, aclTensor *out,
                                                             uint64_t *workspaceSize, aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeTokenUnpermute(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                             aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_TOKEN_UNPERMUTE_H_ */
