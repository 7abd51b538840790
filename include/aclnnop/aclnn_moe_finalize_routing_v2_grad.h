/* aclnn-moe: aclnnMoeFinalizeRoutingV2Grad (CANN's aclnnop/aclnn_moe_finalize_routing_v2_grad.h). */
#ifndef ACLNNOP_ACLNN_MOE_FINALIZE_ROUTING_V2_GRAD_H_
#define ACLNNOP_ACLNN_MOE_FINALIZE_ROUTING_V2_GRAD_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* gradY [R, H] fp16/bf16/fp32; expandedRowIdx [R*K] int32 (row-major; -1 = dropped in dropPadMode 1);
 * expandedXOptional [R*K or activeNum, H] or [E, C, H] (required with scalesOptional); scalesOptional [R, K];
 * expertIdxOptional [R, K] int32 (required with biasOptional); biasOptional [E, H];
 * gradExpandedXOut shaped as expandedX; gradScalesOut [R, K] (written when scalesOptional is given). */
ACLNN_API aclnnStatus aclnnMoeFinalizeRoutingV2GradGetWorkspaceSize(
    const aclTensor *gradY, const aclTensor *expandedRowIdx, const aclTensor *expandedXOptional,
    const aclTensor *scalesOptional, const aclTensor *expertIdxOptional, const aclTensor *biasOptional,
    int64_t dropPadMode, int64_t activeNum, int64_t expertNum, int64_t expertCapacity,
    const aclTensor *gradExpandedXOut, const aclTensor *gradScalesOut, uint64_t *workspaceSize,
    aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeFinalizeRoutingV2Grad(void *workspace, uint64_t workspaceSize,
                                                    aclOpExecutor *executor, aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_FINALIZE_ROUTING_V2_GRAD_H_ */
