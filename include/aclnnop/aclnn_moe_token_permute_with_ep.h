/* aclnn-moe: aclnnMoeTokenPermuteWithEp (CANN's aclnnop/aclnn_moe_token_permute_with_ep.h). */
#ifndef ACLNNOP_ACLNN_MOE_TOKEN_PERMUTE_WITH_EP_H_
#define ACLNNOP_ACLNN_MOE_TOKEN_PERMUTE_WITH_EP_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* tokens [T, H] fp16/bf16/fp32; indices [T, K] or [T] int32/int64; probsOptional shape of indices, tokens dtype;
 * rangeOptional [start, end]; permuteTokensOut [n_out, H] tokens dtype; sortedIndicesOut [T*K] int32;
 * permuteProbsOut [n_out] tokens dtype (written only when probsOptional is given). */
ACLNN_API aclnnStatus aclnnMoeTokenPermuteWithEpGetWorkspaceSize(const aclTensor *tokens, const aclTensor *indices,
                                                                 const aclTensor *probsOptional,
                                                                 const aclIntArray *rangeOptional, int64_t numOutTokens,
                                                                 bool paddedMode, const aclTensor *permuteTokensOut,
                                                                 const aclTensor *sortedIndicesOut,
                                                                 const aclTensor *permuteProbsOut,
                                                                 uint64_t *workspaceSize, aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeTokenPermuteWithEp(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                                 aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_TOKEN_PERMUTE_WITH_EP_H_ */
