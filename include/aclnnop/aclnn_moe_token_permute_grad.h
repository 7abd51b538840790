/* aclnn-moe: aclnnMoeTokenPermuteGrad (CANN's aclnnop/aclnn_moe_token_permute_grad.h). */
#ifndef ACLNNOP_ACLNN_MOE_TOKEN_PERMUTE_GRAD_H_
#define ACLNNOP_ACLNN_MOE_TOKEN_PERMUTE_GRAD_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* permutedOutputGrad [rows, H] fp16/bf16/fp32 (rows = numOutTokens of the forward); sortedIndices [T*K] int32;
 * numTopk = K; paddedMode false only; out [T, H] permutedOutputGrad dtype. */
ACLNN_API aclnnStatus aclnnMoeTokenPermuteGradGetWorkspaceSize(const aclTensor *permutedOutputGrad,
                                                               const aclTensor *sortedIndices, int64_t numTopk,
                                                               bool paddedMode, aclTensor *out,
                                                               uint64_t *workspaceSize, aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeTokenPermuteGrad(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                               aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_TOKEN_PERMUTE_GRAD_H_ */
