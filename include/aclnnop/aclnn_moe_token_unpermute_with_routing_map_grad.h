/*
 * aclnnMoeTokenUnpermuteWithRoutingMapGrad: the backward of aclnnMoeTokenUnpermuteWithRoutingMap (host
 * implementation; prototype as CANN's docs/aclnnMoeTokenUnpermuteWithRoutingMapGrad.md).
 */
#ifndef ACLNNOP_ACLNN_MOE_TOKEN_UNPERMUTE_WITH_ROUTING_MAP_GRAD_H_
#define ACLNNOP_ACLNN_MOE_TOKEN_UNPERMUTE_WITH_ROUTING_MAP_GRAD_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* unpermutedTokensGrad [T, H] fp16/bf16/fp32; outIndex, permuteTokenId int32 [L] (L = T*K, or E*C with dropAndPad);
 * routingMapOptional [T, E] int8/bool, permutedTokensOptional [L, H] and probsOptional [T, E] (the tokens dtype, or
 * fp32 with bf16 tokens) all with probs; restoreShapeOptional ignored; permutedTokensGradOut [L, H];
 * probsGradOutOptional [T, E] in the probs dtype, with probs. */
ACLNN_API aclnnStatus aclnnMoeTokenUnpermuteWithRoutingMapGradGetWorkspaceSize(
    const aclTensor *unpermutedTokensGrad, const aclTensor *outIndex, const aclTensor *permuteTokenId,
    const aclTensor *routingMapOptional, const aclTensor *permutedTokensOptional, const aclTensor *probsOptional,
    bool dropAndPad, const aclIntArray *restoreShapeOptional, const aclTensor *permutedTokensGradOut,
    const aclTensor *probsGradOutOptional, uint64_t *workspaceSize, aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeTokenUnpermuteWithRoutingMapGrad(void *workspace, uint64_t workspaceSize,
                                                               aclOpExecutor *executor, const aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_TOKEN_UNPERMUTE_WITH_ROUTING_MAP_GRAD_H_ */
