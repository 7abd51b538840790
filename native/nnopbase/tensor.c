/* aclTensor, aclScalar and the array / list types. Shapes, strides and array contents are copied at creation,
 * as CANN does; NULL strides mean contiguous; destroying a list destroys the tensors (scalars) it holds. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "nnopbase_internal.h"
#include "../common/checked.h"

host_ptrset g_live_tensors = HOST_PTRSET_INIT;

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

/* The products below cannot overflow for a live tensor: describe() admits only descriptors whose element
 * counts, extents and byte sizes fit in int64. */
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
    int64_t extent = 0;
    host_view_extent(t->dims, t->strides, t->ndim, t->offset, &extent); /* checked when the tensor was made */
    return extent;
}

int acl_host_tensor_live(const aclTensor *t) { return nnop_tensor_live(t); }

int nnop_check_alignment(const char *api, const char *param, const void *addr, aclDataType dtype)
{
    int64_t es = acl_host_dtype_size(dtype);
    if (es > 0 && ((uintptr_t)addr % (uintptr_t)es) != 0)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                              "%s: %s %p is not aligned to its element size (%lld bytes, %s); device addresses from "
                              "aclrtMalloc are 64-byte aligned (the NPU needs 32)",
                              api, param, addr, (long long)es, acl_host_dtype_name(dtype));
    return ACLNN_SUCCESS;
}

/* fills *t from the creation arguments; returns 0 or records why not and returns -1.
 * Beyond CANN's own checks (NULL dims with a count), the host rejects what its kernels could not address safely:
 * negative dims, strides or offset; element counts, view extents or byte sizes past INT64_MAX; and a data
 * address not aligned to the element size (status 161002 in the message; aclCreateTensor returns NULL). A
 * dtype the host has no element size for (ACL_INT4, ACL_STRING, ...) is refused too, where CANN accepts it at
 * creation: the host could not check any view of it, and no operator of this library takes one. */
static int describe(aclTensor *t, const char *api, const int64_t *viewDims, uint64_t viewDimsNum,
                    aclDataType dataType, const int64_t *stride, int64_t offset, aclFormat format,
                    const int64_t *storageDims, uint64_t storageDimsNum, void *tensorData)
{
    if (viewDims == NULL && viewDimsNum > 0)
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: viewDims is NULL but viewDimsNum is %llu", api,
                              (unsigned long long)viewDimsNum);
    if (storageDims == NULL && storageDimsNum > 0)
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: storageDims is NULL but storageDimsNum is %llu", api,
                              (unsigned long long)storageDimsNum);
    if (viewDimsNum > ACL_HOST_MAX_DIMS || storageDimsNum > ACL_HOST_MAX_DIMS)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: at most %d dimensions are supported", api,
                              ACL_HOST_MAX_DIMS);
    int64_t es = acl_host_dtype_size(dataType);
    if (es == 0)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: dataType %d is not supported", api, (int)dataType);
    if (offset < 0)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: offset %lld is negative", api, (long long)offset);
    aclnnStatus st = nnop_check_alignment(api, "tensorData", tensorData, dataType);
    if (st) return st;
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
                                  (long long)viewDims[i]);
        t->dims[i] = viewDims[i];
        t->strides[i] = stride ? stride[i] : expect;
        if (t->strides[i] < 0)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: stride[%d] = %lld is negative", api, i,
                                  (long long)t->strides[i]);
        if (!stride && host_mul_i64(expect, viewDims[i] ? viewDims[i] : 1, &expect))
            return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                  "%s: the contiguous strides of viewDims overflow int64 (the product of the dims "
                                  "passes %lld)", api, (long long)INT64_MAX);
    }
    for (uint64_t i = 0; i < storageDimsNum; i++) {
        if (storageDims[i] < 0)
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: storageDims[%llu] = %lld is negative", api,
                                  (unsigned long long)i, (long long)storageDims[i]);
        t->storage_dims[i] = storageDims[i];
    }
    int64_t numel, extent, storage, bytes;
    if (host_dims_product(t->dims, t->ndim, &numel) || host_mul_i64(numel, es, &bytes))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: viewDims hold more than %lld bytes of %s elements", api,
                              (long long)INT64_MAX, acl_host_dtype_name(dataType));
    if (host_view_extent(t->dims, t->strides, t->ndim, offset, &extent) || host_mul_i64(extent, es, &bytes))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                              "%s: the view (offset + sum of (viewDims[i] - 1) * stride[i]) reaches past %lld bytes",
                              api, (long long)INT64_MAX);
    if (host_dims_product(t->storage_dims, t->storage_ndim, &storage) || host_mul_i64(storage, es, &bytes))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: storageDims hold more than %lld bytes of %s elements", api,
                              (long long)INT64_MAX, acl_host_dtype_name(dataType));
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
    aclnnStatus st = describe(&tmp, "aclInitTensor", viewDims, viewDimsNum, dataType, stride, offset, format,
                              storageDims, storageDimsNum, tensorDataAddr);
    if (st) return st;
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
    aclnnStatus st = nnop_check_alignment("aclSetRawTensorAddr", "addr", addr, tensor->dtype);
    if (st) return st;
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

/* ---- scalars, arrays and lists: one live set per type, so a handle of one type passed where another is
 * expected (or a destroyed / wild one) is an error status, never a misread ---- */
static host_ptrset g_live_scalars = HOST_PTRSET_INIT;
static host_ptrset g_live_int_arrays = HOST_PTRSET_INIT;
static host_ptrset g_live_float_arrays = HOST_PTRSET_INIT;
static host_ptrset g_live_bool_arrays = HOST_PTRSET_INIT;
static host_ptrset g_live_tensor_lists = HOST_PTRSET_INIT;
static host_ptrset g_live_scalar_lists = HOST_PTRSET_INIT;

struct aclScalar {
    uint32_t magic;
    aclDataType dtype;
    unsigned char value[16];
};

aclScalar *aclCreateScalar(void *value, aclDataType dataType)
{
    int64_t sz = acl_host_dtype_size(dataType);
    if (!value) return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "aclCreateScalar: value must not be NULL"), NULL;
    if (sz == 0 || sz > 16)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "aclCreateScalar: dataType %d is not supported",
                              (int)dataType), NULL;
    aclScalar *s = (aclScalar *)calloc(1, sizeof *s);
    if (!s || host_ptrset_add(&g_live_scalars, s) != 0) {
        free(s);
        return acl_host_error(ACLNN_ERR_INNER, "aclCreateScalar: out of memory"), NULL;
    }
    s->magic = HOST_ARRAY_MAGIC;
    s->dtype = dataType;
    memcpy(s->value, value, (size_t)sz);
    return s;
}

static aclnnStatus destroy_object(const char *api, host_ptrset *set, const void *obj)
{
    if (!obj) return ACLNN_SUCCESS;
    if (!host_ptrset_remove(set, obj))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: %p is not a live handle of this type", api, obj);
    return ACLNN_SUCCESS;
}

aclnnStatus aclDestroyScalar(const aclScalar *scalar)
{
    aclnnStatus st = destroy_object("aclDestroyScalar", &g_live_scalars, scalar);
    if (st == ACLNN_SUCCESS && scalar) free((void *)scalar);
    return st;
}

/* ---- arrays and lists: one layout (host_array), values copied ---- */
typedef struct {
    uint32_t magic;
    uint64_t size;
    void *values;
} host_array;

/* NULL with a message (161001 / 161002 in the text) on bad arguments or when out of memory */
static void *create_array(const char *api, host_ptrset *set, const void *value, uint64_t size, size_t elem)
{
    if (!value && size > 0)
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: value is NULL but size is %llu", api,
                              (unsigned long long)size), NULL;
    uint64_t bytes;
    if (host_mul_u64(size, elem, &bytes) || bytes > (uint64_t)PTRDIFF_MAX)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: size %llu is too large", api,
                              (unsigned long long)size), NULL;
    host_array *a = (host_array *)calloc(1, sizeof *a);
    if (a) {
        a->magic = HOST_ARRAY_MAGIC;
        a->size = size;
        a->values = malloc(size ? (size_t)bytes : 1);
        if (a->values && size) memcpy(a->values, value, (size_t)bytes);
    }
    if (!a || !a->values || host_ptrset_add(set, a) != 0) {
        if (a) free(a->values);
        free(a);
        return acl_host_error(ACLNN_ERR_INNER, "%s: out of memory", api), NULL;
    }
    return a;
}

static aclnnStatus destroy_array(const char *api, host_ptrset *set, const void *arr)
{
    aclnnStatus st = destroy_object(api, set, arr);
    if (st == ACLNN_SUCCESS && arr) { free(((host_array *)arr)->values); free((void *)arr); }
    return st;
}

static aclnnStatus array_size(const char *api, host_ptrset *set, const void *arr, uint64_t *size)
{
    if (!arr || !size) return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: the handle and size must not be NULL", api);
    if (!host_ptrset_contains(set, arr))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: %p is not a live handle of this type", api, arr);
    *size = ((const host_array *)arr)->size;
    return ACLNN_SUCCESS;
}

/* struct aclIntArray in host_internal.h has the host_array layout, so the ops can read it directly */
aclIntArray *aclCreateIntArray(const int64_t *value, uint64_t size)
{
    return (aclIntArray *)create_array("aclCreateIntArray", &g_live_int_arrays, value, size, sizeof(int64_t));
}
aclFloatArray *aclCreateFloatArray(const float *value, uint64_t size)
{
    return (aclFloatArray *)create_array("aclCreateFloatArray", &g_live_float_arrays, value, size, sizeof(float));
}
aclBoolArray *aclCreateBoolArray(const bool *value, uint64_t size)
{
    return (aclBoolArray *)create_array("aclCreateBoolArray", &g_live_bool_arrays, value, size, sizeof(bool));
}
aclnnStatus aclDestroyIntArray(const aclIntArray *array)
{
    return destroy_array("aclDestroyIntArray", &g_live_int_arrays, array);
}
aclnnStatus aclDestroyFloatArray(const aclFloatArray *array)
{
    return destroy_array("aclDestroyFloatArray", &g_live_float_arrays, array);
}
aclnnStatus aclDestroyBoolArray(const aclBoolArray *array)
{
    return destroy_array("aclDestroyBoolArray", &g_live_bool_arrays, array);
}
aclnnStatus aclGetIntArraySize(const aclIntArray *array, uint64_t *size)
{
    return array_size("aclGetIntArraySize", &g_live_int_arrays, array, size);
}
aclnnStatus aclGetFloatArraySize(const aclFloatArray *array, uint64_t *size)
{
    return array_size("aclGetFloatArraySize", &g_live_float_arrays, array, size);
}
aclnnStatus aclGetBoolArraySize(const aclBoolArray *array, uint64_t *size)
{
    return array_size("aclGetBoolArraySize", &g_live_bool_arrays, array, size);
}


int acl_host_int_array_live(const aclIntArray *array)
{
    return array && host_ptrset_contains(&g_live_int_arrays, array);
}

/* ---- lists: elements may be NULL; any other element must be live. A list owns its elements: destroying it
 * destroys them (an element destroyed before, or listed twice, is skipped: it is no longer live) ---- */
aclTensorList *aclCreateTensorList(const aclTensor *const *value, uint64_t size)
{
    for (uint64_t i = 0; value && i < size; i++)
        if (value[i] && !nnop_tensor_live(value[i]))
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "aclCreateTensorList: value[%llu] is not a live aclTensor",
                                  (unsigned long long)i), NULL;
    return (aclTensorList *)create_array("aclCreateTensorList", &g_live_tensor_lists, value, size,
                                         sizeof(aclTensor *));
}

aclScalarList *aclCreateScalarList(const aclScalar *const *value, uint64_t size)
{
    for (uint64_t i = 0; value && i < size; i++)
        if (value[i] && !host_ptrset_contains(&g_live_scalars, value[i]))
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "aclCreateScalarList: value[%llu] is not a live aclScalar",
                                  (unsigned long long)i), NULL;
    return (aclScalarList *)create_array("aclCreateScalarList", &g_live_scalar_lists, value, size,
                                         sizeof(aclScalar *));
}

aclnnStatus aclDestroyTensorList(const aclTensorList *array)
{
    if (!array) return ACLNN_SUCCESS;
    if (!host_ptrset_remove(&g_live_tensor_lists, array))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "aclDestroyTensorList: %p is not a live aclTensorList",
                              (const void *)array);
    host_array *a = (host_array *)array;
    for (uint64_t i = 0; i < a->size; i++) {
        const aclTensor *t = ((const aclTensor **)a->values)[i];
        if (nnop_tensor_live(t)) aclDestroyTensor(t);
    }
    free(a->values);
    free(a);
    return ACLNN_SUCCESS;
}

aclnnStatus aclDestroyScalarList(const aclScalarList *array)
{
    if (!array) return ACLNN_SUCCESS;
    if (!host_ptrset_remove(&g_live_scalar_lists, array))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "aclDestroyScalarList: %p is not a live aclScalarList",
                              (const void *)array);
    host_array *a = (host_array *)array;
    for (uint64_t i = 0; i < a->size; i++) {
        const aclScalar *sc = ((const aclScalar **)a->values)[i];
        if (sc && host_ptrset_contains(&g_live_scalars, sc)) aclDestroyScalar(sc);
    }
    free(a->values);
    free(a);
    return ACLNN_SUCCESS;
}

aclnnStatus aclGetTensorListSize(const aclTensorList *tensorList, uint64_t *size)
{
    return array_size("aclGetTensorListSize", &g_live_tensor_lists, tensorList, size);
}

aclnnStatus aclGetScalarListSize(const aclScalarList *scalarList, uint64_t *size)
{
    return array_size("aclGetScalarListSize", &g_live_scalar_lists, scalarList, size);
}

/* ---- shape queries: the arrays come from malloc, so a C caller releases them with free() (CANN documents
 * delete[] for its C++ callers; with the usual C++ runtimes, which implement operator delete[] with free for
 * trivially destructible types, delete[] works too, although sanitizers report it as a mismatch) ---- */
enum { Q_VIEW_DIMS, Q_STORAGE_DIMS, Q_STRIDES };

static aclnnStatus copy_out(const char *api, const aclTensor *t, int which, int64_t **dst, uint64_t *num)
{
    if (!t || !dst || !num)
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: tensor and the output pointers must not be NULL", api);
    if (!nnop_tensor_live(t))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: %p is not a live aclTensor", api, (const void *)t);
    const int64_t *src = which == Q_VIEW_DIMS ? t->dims : which == Q_STORAGE_DIMS ? t->storage_dims : t->strides;
    int n = which == Q_STORAGE_DIMS ? t->storage_ndim : t->ndim;
    int64_t *out = (int64_t *)malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    if (!out) return acl_host_error(ACLNN_ERR_INNER, "%s: out of memory", api);
    memcpy(out, src, sizeof(int64_t) * (size_t)n);
    *dst = out;
    *num = (uint64_t)n;
    return ACLNN_SUCCESS;
}

aclnnStatus aclGetViewShape(const aclTensor *tensor, int64_t **viewDims, uint64_t *viewDimsNum)
{
    return copy_out("aclGetViewShape", tensor, Q_VIEW_DIMS, viewDims, viewDimsNum);
}

aclnnStatus aclGetStorageShape(const aclTensor *tensor, int64_t **storageDims, uint64_t *storageDimsNum)
{
    return copy_out("aclGetStorageShape", tensor, Q_STORAGE_DIMS, storageDims, storageDimsNum);
}

aclnnStatus aclGetViewStrides(const aclTensor *tensor, int64_t **stridesValue, uint64_t *stridesNum)
{
    return copy_out("aclGetViewStrides", tensor, Q_STRIDES, stridesValue, stridesNum);
}

/* ---- fork(): each set is consistent in the child (its lock is held across fork) ---- */
static host_ptrset *const g_all_sets[] = {&g_live_tensors, &g_live_scalars, &g_live_int_arrays,
                                          &g_live_float_arrays, &g_live_bool_arrays, &g_live_tensor_lists,
                                          &g_live_scalar_lists, &g_live_executors};
#define N_SETS (sizeof g_all_sets / sizeof g_all_sets[0])

static void atfork_prepare(void)
{
    for (size_t i = 0; i < N_SETS; i++) host_ptrset_lock(g_all_sets[i]);
}

static void atfork_release(void)
{
    for (size_t i = N_SETS; i-- > 0;) host_ptrset_unlock(g_all_sets[i]);
}

__attribute__((constructor)) static void register_atfork(void)
{
    pthread_atfork(atfork_prepare, atfork_release, atfork_release);
}

aclnnStatus aclnnInit(const char *configPath)
{
    (void)configPath; /* debug-kernel switches have no meaning for host kernels */
    return ACLNN_SUCCESS;
}

aclnnStatus aclnnFinalize(void) { return ACLNN_SUCCESS; }
