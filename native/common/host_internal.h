/*
 * Internal contract of the embedded host runtime, shared by its three libraries:
 *   libascendcl.so  (runtime: devices, memory, streams, events, error messages)   native/runtime/
 *   libnnopbase.so  (tensors, arrays, executors)                                  native/nnopbase/
 *   libopapi.so     (the operators)                                               native/ops/
 * Nothing here is part of the public ABI in include/; the symbols below are exported only so that the
 * libraries can reach each other, and they carry an acl_host_ prefix that CANN never uses.
 */
#ifndef ACLNN_MOE_HOST_INTERNAL_H_
#define ACLNN_MOE_HOST_INTERNAL_H_

#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>
#include "acl/acl.h"
#include "aclnn/aclnn_base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ACL_HOST_API __attribute__((visibility("default")))
#define ACL_HOST_MAX_DIMS 8

/* ---- error messages (libascendcl) -------------------------------------------------------------------
 * Records a thread-local message for aclGetRecentErrMsg() and returns `status` unchanged, so that a check
 * reads:  return acl_host_error(ACLNN_ERR_PARAM_INVALID, "aclnnFoo: x must be 2-D, got %d-D", nd);        */
ACL_HOST_API int acl_host_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
ACL_HOST_API int acl_host_verror(int status, const char *fmt, va_list ap);

/* ---- device memory (libascendcl) --------------------------------------------------------------------
 * Device memory of the host runtime is host memory obtained from aclrtMalloc; the runtime keeps the live
 * blocks so that kernels can verify that a tensor's storage lies inside one of them.                    */
ACL_HOST_API int acl_host_is_device_range(const void *ptr, uint64_t nbytes);
/* Like acl_host_is_device_range, and pins the block: until acl_host_device_unpin(ptr), aclrtFree and
 * aclrtHostUnregister of it fail with ACL_ERROR_RT_MEMORY_FREE, so memory is never freed under a running kernel.
 * Registered host memory (aclrtHostRegister) is device memory for both. */
ACL_HOST_API int acl_host_device_pin(const void *ptr, uint64_t nbytes);
ACL_HOST_API void acl_host_device_unpin(const void *ptr);
/* the pool of freed aclrtMalloc mappings (tests and diagnostics); any pointer may be NULL */
ACL_HOST_API void acl_host_device_pool_stats(uint64_t *pooled_bytes, uint64_t *pooled_blocks, uint64_t *cap);

/* ---- streams (libascendcl) --------------------------------------------------------------------------
 * The host runtime executes work eagerly in the calling thread, in stream order; a stream is a lock that
 * serialises the work submitted to it. NULL is the default stream.                                     */
ACL_HOST_API int acl_host_stream_acquire(aclrtStream stream); /* ACL_SUCCESS or an ACL error (bad handle) */
ACL_HOST_API void acl_host_stream_release(aclrtStream stream);
ACL_HOST_API int acl_host_runtime_ready(void);                /* aclInit done and a device set */

/* ---- tensors (libnnopbase) --------------------------------------------------------------------------- */
struct aclTensor {
    uint32_t magic;
    aclDataType dtype;
    aclFormat format;
    int32_t ndim;
    int64_t dims[ACL_HOST_MAX_DIMS];
    int64_t strides[ACL_HOST_MAX_DIMS]; /* in elements, may be 0 (broadcast) but never negative */
    int64_t offset;                     /* in elements from data */
    int32_t storage_ndim;
    int64_t storage_dims[ACL_HOST_MAX_DIMS];
    void *data;                         /* storage base address */
};

struct aclIntArray {
    uint32_t magic;
    uint64_t size;
    int64_t *values;
};

/* Descriptor guarantees: a live tensor has non-negative dims, strides and offset, and its element count, view
 * extent (offset + sum (dims[i]-1)*strides[i] + 1) and storage element count, each times the element size, fit
 * in int64 (aclCreateTensor / aclInitTensor reject the rest); its data address is aligned to the element size.
 * Arithmetic beyond that (op shape rules, workspace sizes) goes through native/common/checked.h. */
ACL_HOST_API int acl_host_tensor_live(const aclTensor *t);          /* a live aclCreateTensor result; any pointer */
ACL_HOST_API int acl_host_int_array_live(const aclIntArray *array); /* a live aclCreateIntArray result */
ACL_HOST_API int64_t acl_host_dtype_size(aclDataType dtype);      /* bytes per element, 0 if unsupported */
ACL_HOST_API const char *acl_host_dtype_name(aclDataType dtype);   /* "float16", "bfloat16", "int32", ... */
ACL_HOST_API int64_t acl_host_numel(const aclTensor *t);           /* product of view dims */
ACL_HOST_API int64_t acl_host_storage_numel(const aclTensor *t);   /* product of storage dims */
ACL_HOST_API int acl_host_is_contiguous(const aclTensor *t);       /* row-major contiguous view */

/* ---- executors (libnnopbase) --------------------------------------------------------------------------
 * Phase 1 of every operator validates its arguments, then calls acl_host_executor_create() which copies the
 * tensor descriptors (absent optional tensors are NULL slots) and the op's parameter block. Phase 2 of every
 * operator is one line: return acl_host_executor_run(executor, workspace, workspaceSize, stream, "aclnnFoo");
 * which checks the executor, the workspace and the stream, verifies that every tensor's storage is device
 * memory with a valid view, runs the kernel, and frees the executor unless it was made repeatable.
 * Inputs and outputs are numbered in prototype order (inputs first) for aclSetInput/OutputTensorAddr.      */
#define ACL_HOST_MAX_TENSORS 16

typedef aclnnStatus (*acl_host_kernel_fn)(aclOpExecutor *executor, void *workspace, uint64_t workspaceSize);

struct aclOpExecutor {
    uint32_t magic;
    const char *api;              /* phase-2 function name that may run it, e.g. "aclnnMoeGatingTopK" */
    int repeatable;
    int n_inputs;
    int n_outputs;
    aclTensor *inputs[ACL_HOST_MAX_TENSORS];  /* executor-owned copies; NULL for absent optional inputs */
    aclTensor *outputs[ACL_HOST_MAX_TENSORS];
    uint64_t workspace_size;
    acl_host_kernel_fn kernel;
    void *params;                 /* executor-owned copy of the op's parameter block */
};

ACL_HOST_API aclnnStatus acl_host_executor_create(const char *api, acl_host_kernel_fn kernel,
                                                  const aclTensor *const *inputs, int n_inputs,
                                                  const aclTensor *const *outputs, int n_outputs,
                                                  const void *params, size_t params_size,
                                                  uint64_t workspace_size, uint64_t *workspaceSize,
                                                  aclOpExecutor **executor);
ACL_HOST_API aclnnStatus acl_host_executor_run(aclOpExecutor *executor, void *workspace, uint64_t workspaceSize,
                                               aclrtStream stream, const char *api);

/* ---- threads (libopapi, native/common/parallel.c) ------------------------------------------------------
 * Runs fn(ctx, begin, end) over [0, n) split into chunks of at least `grain` items on a persistent pool
 * (ACLNN_MOE_NUM_THREADS, default: the CPUs this process may use). Returns when all chunks are done.     */
typedef void (*acl_host_range_fn)(void *ctx, int64_t begin, int64_t end);
void acl_host_parallel_for(int64_t n, int64_t grain, acl_host_range_fn fn, void *ctx);
int acl_host_num_threads(void);

#ifdef __cplusplus
}
#endif

#endif /* ACLNN_MOE_HOST_INTERNAL_H_ */
