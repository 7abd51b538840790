/* aclnn-moe: aclnnMoeTokenPermute (CANN's aclnnop/aclnn_moe_token_permute.h). */
#ifndef ACLNNOP_ACLNN_MOE_TOKEN_PERMUTE_H_
#define ACLNNOP_ACLNN_MOE_TOKEN_PERMUTE_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* tokens [T, ...] fp16/bf16/fp32/int8; indices [T, K] or [T] int32/int64; numOutTokens 0 (all), > 0 (first n) or
 * < 0 (all but the last |n|); paddedMode false only; permuteTokensOut [n_out, ...]; sortedIndicesOut [T*K] int32. */
ACLNN_API aclnnStatus aclnnMoeTokenPermuteGetWorkspaceSize(const aclTensor *tokens, const aclTensor *indices,
                                                           int64_t numOutTokens, bool paddedMode,
                                                           const aclTensor *permuteTokensOut,
                                                           const aclTensor *sortedIndicesOut, uint64_t *workspaceSize,
                                                           aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeTokenPermute(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                           aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_TOKEN_PERMUTE_H_ */
