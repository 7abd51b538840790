/* aclnn-moe: aclnnMoeTokenPermuteWithRoutingMap (CANN's aclnnop/aclnn_moe_token_permute_with_routing_map.h). */
#ifndef ACLNNOP_ACLNN_MOE_TOKEN_PERMUTE_WITH_ROUTING_MAP_H_
#define ACLNNOP_ACLNN_MOE_TOKEN_PERMUTE_WITH_ROUTING_MAP_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* tokens [T, H] fp16/bf16/fp32; routingMap [T, E] int8/bool; probsOptional [T, E]; numOutTokens in [0, T*E];
 * permuteTokensOut [n_out, H]; permuteProbsOutOptional [n_out]; sortedIndicesOut [n_out] int32, where
 * n_out = numOutTokens rounded down to a multiple of T (of E with dropAndPad). */
ACLNN_API aclnnStatus aclnnMoeTokenPermuteWithRoutingMapGetWorkspaceSize(const aclTensor *tokens,
                                                                         const aclTensor *routingMap,
                                                                         const aclTensor *probsOptional,
                                                                         int64_t numOutTokens, bool dropAndPad,
                                                                         aclTensor *permuteTokensOut,
                                                                         aclTensor *permuteProbsOutOptional,
                                                                         aclTensor *sortedIndicesOut,
                                                                         uint64_t *workspaceSize,
                                                                         aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeTokenPermuteWithRoutingMap(void *workspace, uint64_t workspaceSize,
                                                         aclOpExecutor *executor, aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_TOKEN_PERMUTE_WITH_ROUTING_MAP_H_ */
