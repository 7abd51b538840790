/* aclnn-moe: aclnnMoeInitRoutingQuant (CANN's aclnnop/aclnn_moe_init_routing_quant.h, generated from the op
 * definition: inputs, attributes, outputs). */
#ifndef ACLNNOP_ACLNN_MOE_INIT_ROUTING_QUANT_H_
#define ACLNNOP_ACLNN_MOE_INIT_ROUTING_QUANT_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* x [N, H] fp16/bf16/fp32; rowIdx [N, K] int32 (a permutation of [0, N*K)); expertIdx [N, K] int32;
 * expandedXOut [min(N, activeNum)*K, H] int8 = int8(rint(fp16(x) * fp16(scale) + fp16(offset)));
 * expandedRowIdxOut, expandedExpertIdxOut [N*K] int32. */
ACLNN_API aclnnStatus aclnnMoeInitRoutingQuantGetWorkspaceSize(const aclTensor *x, const aclTensor *rowIdx,
                                                               const aclTensor *expertIdx, int64_t activeNum,
                                                               double scale, double offset,
                                                               const aclTensor *expandedXOut,
                                                               const aclTensor *expandedRowIdxOut,
                                                               const aclTensor *expandedExpertIdxOut,
                                                               uint64_t *workspaceSize, aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeInitRoutingQuant(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                               aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_INIT_ROUTING_QUANT_H_ */
