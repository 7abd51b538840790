/* aclnn-moe: aclnnMoeTokenUnpermuteWithRoutingMap (CANN's aclnnop/aclnn_moe_token_unpermute_with_routing_map.h). */
#ifndef ACLNNOP_ACLNN_MOE_TOKEN_UNPERMUTE_WITH_ROUTING_MAP_H_
#define ACLNNOP_ACLNN_MOE_TOKEN_UNPERMUTE_WITH_ROUTING_MAP_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* permutedTokens [rows, H] fp16/bf16/fp32; sortedIndices [T*K] (or [E*C] with paddedMode) int32; routingMapOptional
 * [T, E] int8/uint8/bool; probsOptional [T, E]; restoreShapeOptional [T, H]; unpermutedTokens [T, H];
 * outIndex, permuteTokenId [len(sortedIndices)] int32; permuteProbs [len(sortedIndices)] probs dtype. */
ACLNN_API aclnnStatus aclnnMoeTokenUnpermuteWithRoutingMapGetWorkspaceSize(
    const aclTensor *permutedTokens, const aclTensor *sortedIndices, const aclTensor *routingMapOptional,
    const aclTensor *probsOptional, bool paddedMode, const aclIntArray *restoreShapeOptional,
    aclTensor *unpermutedTokens, aclTensor *outIndex, aclTensor *permuteTokenId, aclTensor *permuteProbs,
    uint64_t *workspaceSize, aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeTokenUnpermuteWithRoutingMap(void *workspace, uint64_t workspaceSize,
                                                           aclOpExecutor *executor, const aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_TOKEN_UNPERMUTE_WITH_ROUTING_MAP_H_ */
