/* aclnn-moe: aclnnMoeFinalizeRoutingV2 (CANN's aclnnop/aclnn_moe_finalize_routing_v2.h). */
#ifndef ACLNNOP_ACLNN_MOE_FINALIZE_ROUTING_V2_H_
#define ACLNNOP_ACLNN_MOE_FINALIZE_ROUTING_V2_H_

#include "aclnn/aclnn_base.h"
#include "aclnn_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* expandedX [N*K, H] (dropPadMode 0/2) or [E, C, H] (1/3) fp16/bf16/fp32; expandedRowIdx [N*K] int32 (0/1 k-major,
 * 2/3 row-major, -1 = dropped in 1/3); x1Optional, x2Optional [N, H]; biasOptional [E, H]; scalesOptional [N, K]
 * (fp32 allowed with bf16); expertIdxOptional [N, K] int32; out [N, H] expandedX dtype. */
ACLNN_API aclnnStatus aclnnMoeFinalizeRoutingV2GetWorkspaceSize(const aclTensor *expandedX,
                                                                const aclTensor *expandedRowIdx,
                                                                const aclTensor *x1Optional,
                                                                const aclTensor *x2Optional,
                                                                const aclTensor *biasOptional,
                                                                const aclTensor *scalesOptional,
                                                                const aclTensor *expertIdxOptional,
                                                                int64_t dropPadMode, const aclTensor *out,
                                                                uint64_t *workspaceSize, aclOpExecutor **executor);
ACLNN_API aclnnStatus aclnnMoeFinalizeRoutingV2(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                                aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* ACLNNOP_ACLNN_MOE_FINALIZE_ROUTING_V2_H_ */
