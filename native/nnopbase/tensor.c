/* aclTensor, aclScalar and the array / list types. Shapes, strides and array contents are copied at creation,
 * as CANN does; NULL strides mean contiguous; destroying a list destroys the tensors (scalars) it holds. */
#include <stdlib.h>
#include <string.h>
#include "nnopbase_internal.h"

host_ptrset g_live_tensors = HOST_PTRSET_INIT;
static host_ptrset g_live_objects = HOST_PTRSET_INIT; /* scalars, arrays, lists */

int64_t acl_host_dtype_size(aclDataType dtype)
{
    switch (dtype) {
    case ACL_FLOAT: case ACL_INT32: case ACL_UINT32: return 4;
    case ACL_FLOAT16: case ACL_BF16: case ACL_INT16: case ACL_UINT16: return 2;
    case ACL_INT8: case ACL_UINT8: case ACL_BOOL: case ACL_HIFLOAT8: case ACL_FLOAT8_E5M2:
    case ACL_FLOAT8_E4M3FN: case ACL_FLOAT8_E8M0: return 1;
    case ACL_INT64: case ACL_UINT64: case ACL_DOUBLE: case ACL_COMPLEX64: return 8;
    case ACL_COMPLEX128: return 16;
    case ACL_COMPLEX32: return 4;
    default: return 0;
    }
}

const char *acl_host_dtype_name(aclDataType dtype)
{
    switch (dtype) {
    case ACL_FLOAT: return "float32";
    case ACL_FLOAT16: return "float16";
    case ACL_BF16: return "bfloat16";
    case ACL_DOUBLE: return "float64";
    case ACL_INT8: return "int8";
    case ACL_UINT8: return "uint8";
    case ACL_INT16: return "int16";
    case ACL_UINT16: return "uint16";
    case ACL_INT32: return "int32";
    case ACL_UINT32: return "uint32";
    case ACL_INT64: return "int64";
    case ACL_UINT64: return "uint64";
    case ACL_BOOL: return "bool";
    case ACL_FLOAT8_E8M0: return "float8_e8m0";
    case ACL_FLOAT8_E5M2: return "float8_e5m2";
    case ACL_FLOAT8_E4M3FN: return "float8_e4m3fn";
    case ACL_HIFLOAT8: return "hifloat8";
    default: return "unsupported";
    }
}

int64_t acl_host_numel(const aclTensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->dims[i];
    return n;
}

int64_t acl_host_storage_numel(const aclTensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->storage_ndim; i++) n *= t->storage_dims[i];
    return n;
}

int acl_host_is_contiguous(const aclTensor *t)
{
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->dims[i] != 1 && t->strides[i] != expect) return 0;
        expect *= t->dims[i];
    }
    return 1;
}

int64_t nnop_view_extent(const aclTensor *t)
{
    int64_t last = t->offset;
    for (int i = 0; i < t->ndim; i++) {
        if (t->dims[i] == 0) return 0;
        last += (t->dims[i] - 1) * t->strides[i];
    }
    return last + 1;
}

/* fills *t from the creation arguments; returns 0 or records why not and returns -1 */
static int describe(aclTensor *t, const char *api, const int64_t *viewDims, uint64_t viewDimsNum,
                    aclDataType dataType, const int64_t *stride, int64_t offset, aclFormat format,
                    const int64_t *storageDims, uint64_t storageDimsNum, void *tensorData)
{
    if (viewDims == NULL && viewDimsNum > 0)
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: viewDims is NULL but viewDimsNum is %llu", api,
                              (unsigned long long)viewDimsNum), -1;
    if (storageDims == NULL && storageDimsNum > 0)
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: storageDims is NULL but storageDimsNum is %llu", api,
                              (unsigned long long)storageDimsNum), -1;
    if (viewDimsNum > ACL_HOST_MAX_DIMS || storageDimsNum > ACL_HOST_MAX_DIMS)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: at most %d dimensions are supported", api,
                              ACL_HOST_MAX_DIMS), -1;
    if (acl_host_dtype_size(dataType) == 0)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: dataType %d is not supported", api, (int)dataType), -1;
    if (offset < 0)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: offset %lld is negative", api, (long long)offset), -1;
    memset(t, 0, sizeof *t);
    t->magic = HOST_TENSOR_MAGIC;
    t->dtype = dataType;
    t->format = format;
    t->ndim = (int32_t)viewDimsNum;
    t->offset = offset;
    t->storage_ndim = (int32_t)storageDimsNum;
    t->data = tensorData;
    int64_t expect = 1;
    for (int i = (int)viewDimsNum - 1; i >= 0; i--) {
        if (viewDims[i] < 0)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: viewDims[%d] = %lld is negative", api, i,
                                  (long long)viewDims[i]), -1;
        t->dims[i] = viewDims[i];
        t->strides[i] = stride ? stride[i] : expect;
        if (t->strides[i] < 0)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: stride[%d] = %lld is negative", api, i,
                                  (long long)t->strides[i]), -1;
        expect *= viewDims[i] ? viewDims[i] : 1;
    }
    for (uint64_t i = 0; i < storageDimsNum; i++) {
        if (storageDims[i] < 0)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: storageDims[%llu] = %lld is negative", api,
                                  (unsigned long long)i, (long long)storageDims[i]), -1;
        t->storage_dims[i] = storageDims[i];
    }
    return 0;
}

aclTensor *aclCreateTensor(const int64_t *viewDims, uint64_t viewDimsNum, aclDataType dataType, const int64_t *stride,
                           int64_t offset, aclFormat format, const int64_t *storageDims, uint64_t storageDimsNum,
                           void *tensorData)
{
    aclTensor *t = (aclTensor *)malloc(sizeof *t);
    if (!t) return NULL;
    if (describe(t, "aclCreateTensor", viewDims, viewDimsNum, dataType, stride, offset, format, storageDims,
                 storageDimsNum, tensorData) != 0 ||
        host_ptrset_add(&g_live_tensors, t) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

aclnnStatus aclInitTensor(aclTensor *tensor, const int64_t *viewDims, uint64_t viewDimsNum, aclDataType dataType,
                          const int64_t *stride, int64_t offset, aclFormat format, const int64_t *storageDims,
                          uint64_t storageDimsNum, void *tensorDataAddr)
{
    if (!nnop_tensor_live(tensor))
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "aclInitTensor: tensor is not a live aclTensor");
    aclTensor tmp;
    if (describe(&tmp, "aclInitTensor", viewDims, viewDimsNum, dataType, stride, offset, format, storageDims,
                 storageDimsNum, tensorDataAddr) != 0)
        return ACLNN_ERR_PARAM_INVALID;
    *tensor = tmp;
    return ACLNN_SUCCESS;
}

aclnnStatus aclDestroyTensor(const aclTensor *tensor)
{
    if (!tensor) return ACLNN_SUCCESS;
    if (!host_ptrset_remove(&g_live_tensors, tensor))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "aclDestroyTensor: %p is not a live aclTensor",
                              (const void *)tensor);
    ((aclTensor *)tensor)->magic = 0;
    free((void *)tensor);
    return ACLNN_SUCCESS;
}

aclnnStatus aclSetRawTensorAddr(aclTensor *tensor, void *addr)
{
    if (!nnop_tensor_live(tensor))
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "aclSetRawTensorAddr: tensor is not a live aclTensor");
    tensor->data = addr;
    return ACLNN_SUCCESS;
}

aclnnStatus aclGetRawTensorAddr(const aclTensor *tensor, void **addr)
{
    if (!nnop_tensor_live(tensor) || !addr)
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "aclGetRawTensorAddr: tensor and addr must be valid");
    *addr = tensor->data;
    return ACLNN_SUCCESS;
}

aclnnStatus aclGetViewOffset(const aclTensor *tensor, int64_t *offset)
{
    if (!nnop_tensor_live(tensor) || !offset)
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "aclGetViewOffset: tensor and offset must be valid");
    *offset = tensor->offset;
    return ACLNN_SUCCESS;
}

aclnnStatus aclGetFormat(const aclTensor *tensor, aclFormat *format)
{
    if (!nnop_tensor_live(tensor) || !format)
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "aclGetFormat: tensor and format must be valid");
    *format = tensor->format;
    return ACLNN_SUCCESS;
}

aclnnStatus aclGetDataType(const aclTensor *tensor, aclDataType *dataType)
{
    if (!nnop_tensor_live(tensor) || !dataType)
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "aclGetDataType: tensor and dataType must be valid");
    *dataType = tensor->dtype;
    return ACLNN_SUCCESS;
}

/* ---- scalars ---- */
struct aclScalar {
    uint32_t magic;
    aclDataType dtype;
    unsigned char value[16];
};

aclScalar *aclCreateScalar(void *value, aclDataType dataType)
{
    int64_t sz = acl_host_dtype_size(dataType);
    if (!value || sz == 0 || sz > 16) return NULL;
    aclScalar *s = (aclScalar *)calloc(1, sizeof *s);
    if (!s) return NULL;
    s->magic = HOST_ARRAY_MAGIC;
    s->dtype = dataType;
    memcpy(s->value, value, (size_t)sz);
    if (host_ptrset_add(&g_live_objects, s) != 0) { free(s); return NULL; }
    return s;
}

static aclnnStatus destroy_object(const char *api, const void *obj)
{
    if (!obj) return ACLNN_SUCCESS;
    if (!host_ptrset_remove(&g_live_objects, obj))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: %p is not a live object", api, obj);
    return ACLNN_SUCCESS;
}

aclnnStatus aclDestroyScalar(const aclScalar *scalar)
{
    aclnnStatus st = destroy_object("aclDestroyScalar", scalar);
    if (st == ACLNN_SUCCESS && scalar) free((void *)scalar);
    return st;
}

/* ---- arrays: one layout for int / float / bool, values copied ---- */
typedef struct {
    uint32_t magic;
    uint64_t size;
    void *values;
} host_array;

static void *create_array(const void *value, uint64_t size, size_t elem)
{
    if (!value && size > 0) return NULL;
    host_array *a = (host_array *)calloc(1, sizeof *a);
    if (!a) return NULL;
    a->magic = HOST_ARRAY_MAGIC;
    a->size = size;
    a->values = malloc(size ? size * elem : 1);
    if (!a->values || host_ptrset_add(&g_live_objects, a) != 0) { free(a->values); free(a); return NULL; }
    if (size) memcpy(a->values, value, size * elem);
    return a;
}

static aclnnStatus destroy_array(const char *api, const void *arr)
{
    aclnnStatus st = destroy_object(api, arr);
    if (st == ACLNN_SUCCESS && arr) { free(((host_array *)arr)->values); free((void *)arr); }
    return st;
}

static aclnnStatus array_size(const char *api, const void *arr, uint64_t *size)
{
    if (!arr || !size || !host_ptrset_contains(&g_live_objects, arr))
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: array and size must be valid", api);
    *size = ((const host_array *)arr)->size;
    return ACLNN_SUCCESS;
}

/* struct aclIntArray in host_internal.h has the host_array layout, so the ops can read it directly */
aclIntArray *aclCreateIntArray(const int64_t *value, uint64_t size)
{
    return (aclIntArray *)create_array(value, size, sizeof(int64_t));
}
aclFloatArray *aclCreateFloatArray(const float *value, uint64_t size)
{
    return (aclFloatArray *)create_array(value, size, sizeof(float));
}
aclBoolArray *aclCreateBoolArray(const bool *value, uint64_t size)
{
    return (aclBoolArray *)create_array(value, size, sizeof(bool));
}
aclnnStatus aclDestroyIntArray(const aclIntArray *array) { return destroy_array("aclDestroyIntArray", array); }
aclnnStatus aclDestroyFloatArray(const aclFloatArray *array) { return destroy_array("aclDestroyFloatArray", array); }
aclnnStatus aclDestroyBoolArray(const aclBoolArray *array) { return destroy_array("aclDestroyBoolArray", array); }
aclnnStatus aclGetIntArraySize(const aclIntArray *array, uint64_t *size)
{
    return array_size("aclGetIntArraySize", array, size);
}
aclnnStatus aclGetFloatArraySize(const aclFloatArray *array, uint64_t *size)
{
    return array_size("aclGetFloatArraySize", array, size);
}
aclnnStatus aclGetBoolArraySize(const aclBoolArray *array, uint64_t *size)
{
    return array_size("aclGetBoolArraySize", array, size);
}

int acl_host_tensor_live(const aclTensor *tensor) { return nnop_tensor_live(tensor); }

int acl_host_int_array_live(const aclIntArray *array)
{
    return array && host_ptrset_contains(&g_live_objects, array);
}

/* ---- lists: they own their elements ---- */
aclTensorList *aclCreateTensorList(const aclTensor *const *value, uint64_t size)
{
    for (uint64_t i = 0; i < size; i++)
        if (value[i] && !nnop_tensor_live(value[i])) return NULL;
    return (aclTensorList *)create_array(value, size, sizeof(aclTensor *));
}

aclScalarList *aclCreateScalarList(const aclScalar *const *value, uint64_t size)
{
    return (aclScalarList *)create_array(value, size, sizeof(aclScalar *));
}

aclnnStatus aclDestroyTensorList(const aclTensorList *array)
{
    if (!array) return ACLNN_SUCCESS;
    if (!host_ptrset_contains(&g_live_objects, array))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "aclDestroyTensorList: %p is not a live list",
                              (const void *)array);
    const host_array *a = (const host_array *)array;
    for (uint64_t i = 0; i < a->size; i++) aclDestroyTensor(((aclTensor **)a->values)[i]);
    return destroy_array("aclDestroyTensorList", array);
}

aclnnStatus aclDestroyScalarList(const aclScalarList *array)
{
    if (!array) return ACLNN_SUCCESS;
    if (!host_ptrset_contains(&g_live_objects, array))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "aclDestroyScalarList: %p is not a live list",
                              (const void *)array);
    const host_array *a = (const host_array *)array;
    for (uint64_t i = 0; i < a->size; i++) aclDestroyScalar(((aclScalar **)a->values)[i]);
    return destroy_array("aclDestroyScalarList", array);
}

aclnnStatus aclGetTensorListSize(const aclTensorList *tensorList, uint64_t *size)
{
    return array_size("aclGetTensorListSize", tensorList, size);
}

aclnnStatus aclGetScalarListSize(const aclScalarList *scalarList, uint64_t *size)
{
    return array_size("aclGetScalarListSize", scalarList, size);
}

aclnnStatus aclnnInit(const char *configPath)
{
    (void)configPath; /* debug-kernel switches have no meaning for host kernels */
    return ACLNN_SUCCESS;
}

aclnnStatus aclnnFinalize(void) { return ACLNN_SUCCESS; }
