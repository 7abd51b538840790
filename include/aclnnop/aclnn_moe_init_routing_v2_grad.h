/* aclnn-moe: aclnnMoeInitRoutingV2Grad (CANN's aclnnop/aclnn_moe_init_routing_v2_grad.h). */
#ifndef ACLNNOP_ACLNN_MOE_INIT_ROUTING_V2_GRAD_H_
#define ACLNNOP_ACLNN_MOE_INIT_ROUTING_V2_GRAD_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* gradExpandedX [N*K, H] (dropless), [activeNum, H] (active) or [E, C, H] (dropPadMode 1) fp16/bf16/fp32;
 * expandedRowIdx [N*K] int32 (row-major, -1 = dropped in mode 1); out [N, H] gradExpandedX dtype. */
ACLNN_API aclnnStatus aclnnMoeInitRoutingV2GradGetWorkspaceSize(const aclTensor *gradExpandedX,
                                                                const aclTensor *expandedRowIdx, int64_t topK,
                                                                int64_t dropPadMode, int64_t activeNum,
                                                                const aclTensor *out, uint64_t *workspaceSize,
                                                                aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeInitRoutingV2Grad(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                                aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_INIT_ROUTING_V2_GRAD_H_ */
