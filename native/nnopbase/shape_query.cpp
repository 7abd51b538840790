// aclGetViewShape / aclGetStorageShape / aclGetViewStrides hand out arrays the caller releases with delete[],
// as CANN documents; that is why this one file of the host runtime is C++.
#include <new>
#include "nnopbase_internal.h"

enum Which { kViewDims, kStorageDims, kStrides };

static aclnnStatus copy_out(const char *api, const aclTensor *t, Which which, int64_t **dst, uint64_t *num)
{
    if (!nnop_tensor_live(t) || !dst || !num)
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: tensor and output pointers must be valid", api);
    const int64_t *src = which == kViewDims ? t->dims : which == kStorageDims ? t->storage_dims : t->strides;
    int n = which == kStorageDims ? t->storage_ndim : t->ndim;
    int64_t *out = new (std::nothrow) int64_t[n > 0 ? n : 1];
    if (!out) return acl_host_error(ACLNN_ERR_INNER, "%s: out of memory", api);
    for (int i = 0; i < n; i++) out[i] = src[i];
    *dst = out;
    *num = static_cast<uint64_t>(n);
    return ACLNN_SUCCESS;
}

extern "C" {
aclnnStatus aclGetViewShape(const aclTensor *tensor, int64_t **viewDims, uint64_t *viewDimsNum)
{
    return copy_out("aclGetViewShape", tensor, kViewDims, viewDims, viewDimsNum);
}
aclnnStatus aclGetStorageShape(const aclTensor *tensor, int64_t **storageDims, uint64_t *storageDimsNum)
{
    return copy_out("aclGetStorageShape", tensor, kStorageDims, storageDims, storageDimsNum);
}
aclnnStatus aclGetViewStrides(const aclTensor *tensor, int64_t **stridesValue, uint64_t *stridesNum)
{
    return copy_out("aclGetViewStrides", tensor, kStrides, stridesValue, stridesNum);
}
}
