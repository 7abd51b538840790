/* Shared between the files of libnnopbase only. */
#ifndef ACLNN_MOE_NNOPBASE_INTERNAL_H_
#define ACLNN_MOE_NNOPBASE_INTERNAL_H_
#include "../common/host_internal.h"
#include "../common/ptrset.h"

#define HOST_TENSOR_MAGIC 0x54454e53u
#define HOST_EXECUTOR_MAGIC 0x45584543u
#define HOST_ARRAY_MAGIC 0x41525259u

extern host_ptrset g_live_tensors;
extern host_ptrset g_live_executors;

/* validates a user tensor handle: live and intact */
static inline int nnop_tensor_live(const aclTensor *t)
{
    return t && host_ptrset_contains(&g_live_tensors, t) && t->magic == HOST_TENSOR_MAGIC;
}

/* largest element offset the view reaches + 1 (0 for an empty view) */
int64_t nnop_view_extent(const aclTensor *t);
/* ACLNN_SUCCESS, or 161002 with a message when addr is not aligned to the element size of dtype */
int nnop_check_alignment(const char *api, const char *param, const void *addr, aclDataType dtype);
#endif
