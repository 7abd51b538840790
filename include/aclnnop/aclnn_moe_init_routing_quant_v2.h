/* aclnn-moe: aclnnMoeInitRoutingQuantV2 (CANN's aclnnop/aclnn_moe_init_routing_quant_v2.h, generated from the op
 * definition: inputs, attributes, outputs). */
#ifndef ACLNNOP_ACLNN_MOE_INIT_ROUTING_QUANT_V2_H_
#define ACLNNOP_ACLNN_MOE_INIT_ROUTING_QUANT_V2_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* x [N, H] fp16/bf16/fp32; expertIdx [N, K] int32; scaleOptional fp32 [1] (static) or [1 or expertNum, H]
 * (dynamic smooth scale); offsetOptional fp32 [1] (static); expandedXOut int8 [rows, H] (dropless) or
 * [expertNum, expertCapacity, H] (drop/pad); expandedRowIdxOut [N*K] int32; expertTokensCountOrCumsumOutOptional
 * [expertNum] int32 (dropless, flag 1/2); expertTokensBeforeCapacityOutOptional [expertNum] int32 (drop/pad, flag
 * set); dynamicQuantScaleOutOptional fp32 [rows] or [expertNum*expertCapacity] (quantMode 1). */
ACLNN_API aclnnStatus aclnnMoeInitRoutingQuantV2GetWorkspaceSize(
    const aclTensor *x, const aclTensor *expertIdx, const aclTensor *scaleOptional, const aclTensor *offsetOptional,
    int64_t activeNum, int64_t expertCapacity, int64_t expertNum, int64_t dropPadMode,
    int64_t expertTokensCountOrCumsumFlag, bool expertTokensBeforeCapacityFlag, int64_t quantMode,
    const aclTensor *expandedXOut, const aclTensor *expandedRowIdxOut,
    const aclTensor *expertTokensCountOrCumsumOutOptional, const aclTensor *expertTokensBeforeCapacityOutOptional,
    const aclTensor *dynamicQuantScaleOutOptional, uint64_t *workspaceSize, aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeInitRoutingQuantV2(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                                 aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_INIT_ROUTING_QUANT_V2_H_ */
