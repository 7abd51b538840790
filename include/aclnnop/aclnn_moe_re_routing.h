/* aclnn-moe: aclnnMoeReRouting (CANN's aclnnop/aclnn_moe_re_routing.h, a generated header).
 * UNCONFIRMED prototype: no published header or doc exists. It is derived from the op definition (inputs, then
 * attrs, then outputs, in def order) and the torch_npu EXEC_NPU_CMD argument order (spec/abi.md 5.2); the
 * parameter names are guesses. This declaration is the only place the prototype is written down: a correction
 * is a change to the one declaration below. */
#ifndef ACLNNOP_ACLNN_MOE_RE_ROUTING_H_
#define ACLNNOP_ACLNN_MOE_RE_ROUTING_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* tokens [A, H] fp16/bf16/int8; expertTokenNumPerRank [N, E] int32/int64; perTokenScalesOptional [A] fp32;
 * permuteTokensOut [A, H] tokens dtype; permutePerTokenScalesOut [A] fp32; permuteTokenIdxOut [A] int32;
 * expertTokenNumOut [E] count dtype. */
ACLNN_API aclnnStatus aclnnMoeReRoutingGetWorkspaceSize(const aclTensor *tokens, const aclTensor *expertTokenNumPerRank,
                                                        const aclTensor *perTokenScalesOptional,
                                                        int64_t expertTokenNumType, int64_t idxType,
                                                        const aclTensor *permuteTokensOut,
                                                        const aclTensor *permutePerTokenScalesOut,
                                                        const aclTensor *permuteTokenIdxOut,
                                                        const aclTensor *expertTokenNumOut, uint64_t *workspaceSize,
                                                        aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeReRouting(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                        aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_RE_ROUTING_H_ */
