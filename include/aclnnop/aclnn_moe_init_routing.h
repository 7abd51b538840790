/* aclnn-moe: aclnnMoeInitRouting (CANN's aclnnop/aclnn_moe_init_routing.h). */
#ifndef ACLNNOP_ACLNN_MOE_INIT_ROUTING_H_
#define ACLNNOP_ACLNN_MOE_INIT_ROUTING_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* x [N, H] fp16/bf16/fp32; rowIdx [N, K] int32; expertIdx [N, K] int32; activeNum >= 0;
 * expandedXOut [min(N, activeNum)*K, H] x dtype; expandedRowIdxOut [N*K] int32; expandedExpertIdxOut [N*K] int32. */
ACLNN_API aclnnStatus aclnnMoeInitRoutingGetWorkspaceSize(const aclTensor *x, const aclTensor *rowIdx,
                                                          const aclTensor *expertIdx, int64_t activeNum,
                                                          const aclTensor *expandedXOut,
                                                          const aclTensor *expandedRowIdxOut,
                                                          const aclTensor *expandedExpertIdxOut,
                                                          uint64_t *workspaceSize, aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeInitRouting(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                          aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_INIT_ROUTING_H_ */
