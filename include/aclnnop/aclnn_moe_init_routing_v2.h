/* aclnn-moe: aclnnMoeInitRoutingV2 (CANN's aclnnop/aclnn_moe_init_routing_v2.h). */
#ifndef ACLNNOP_ACLNN_MOE_INIT_ROUTING_V2_H_
#define ACLNNOP_ACLNN_MOE_INIT_ROUTING_V2_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* x [N, H] fp16/bf16/fp32; expertIdx [N, K] int32; expandedXOut [rows, H] (dropless) or [E, C, H] (drop/pad),
 * x dtype; expandedRowIdxOut [N*K] int32; expertTokensCountOrCumsumOutOptional [E] int32 (dropless, flag 1/2);
 * expertTokensBeforeCapacityOutOptional [E] int32 (drop/pad, flag set). */
ACLNN_API aclnnStatus aclnnMoeInitRoutingV2GetWorkspaceSize(const aclTensor *x, const aclTensor *expertIdx,
                                                            int64_t activeNumOptional, int64_t expertCapacityOptional,
                                                            int64_t expertNumOptional, int64_t dropPadModeOptional,
                                                            int64_t expertTokensCountOrCumsumFlagOptional,
                                                            bool expertTokensBeforeCapacityFlagOptional,
                                                            const aclTensor *expandedXOut,
                                                            const aclTensor *expandedRowIdxOut,
                                                            const aclTensor *expertTokensCountOrCumsumOutOptional,
                                                            const aclTensor *expertTokensBeforeCapacityOutOptional,
                                                            uint64_t *workspaceSize, aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeInitRoutingV2(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                            aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_INIT_ROUTING_V2_H_ */
