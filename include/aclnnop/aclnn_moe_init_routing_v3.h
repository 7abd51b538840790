/* aclnn-moe: aclnnMoeInitRoutingV3 (CANN's aclnnop/aclnn_moe_init_routing_v3.h, a hand-written op_api operator). */
#ifndef ACLNNOP_ACLNN_MOE_INIT_ROUTING_V3_H_
#define ACLNNOP_ACLNN_MOE_INIT_ROUTING_V3_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* x [N, H] fp16/bf16/fp32/int8; expertIdx [N, K] int32, ids in [0, expertNum); scaleOptional fp32 ([N] unquantised,
 * [1] static, [1 or end-start, H] dynamic); offsetOptional fp32 [1] (static); activeExpertRangeOptional [start, end)
 * (NULL or empty: [0, expertNum)).
 * expandedXOut [rows, H] (dropless, rows = N*K or min(activeNum, N*K)) or [expertNum, expertCapacity, H] (drop/pad),
 * x dtype or int8 (quantMode 0/1); expandedRowIdxOut [N*K] int32; expertTokensCountOrCumsumOut int64 [end-start]
 * (cumsum/count) or [expertNum, 2] (key_value); expandedScaleOut fp32 [rows] or [expertNum*expertCapacity]. */
ACLNN_API aclnnStatus aclnnMoeInitRoutingV3GetWorkspaceSize(const aclTensor *x, const aclTensor *expertIdx,
                                                            const aclTensor *scaleOptional,
                                                            const aclTensor *offsetOptional, int64_t activeNum,
                                                            int64_t expertCapacity, int64_t expertNum,
                                                            int64_t dropPadMode, int64_t expertTokensNumType,
                                                            bool expertTokensNumFlag, int64_t quantMode,
                                                            const aclIntArray *activeExpertRangeOptional,
                                                            int64_t rowIdxType, const aclTensor *expandedXOut,
                                                            const aclTensor *expandedRowIdxOut,
                                                            const aclTensor *expertTokensCountOrCumsumOut,
                                                            const aclTensor *expandedScaleOut, uint64_t *workspaceSize,
                                                            aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeInitRoutingV3(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                            aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_INIT_ROUTING_V3_H_ */
