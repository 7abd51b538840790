/* Executors: the object phase 1 returns and phase 2 consumes. An executor owns copies of the tensor
 * descriptors and of the op's parameters, so the caller's descriptors may change after phase 1 without
 * affecting it; addresses are rebound only through aclSet*TensorAddr, and only on repeatable executors. */
#include <stdlib.h>
#include <string.h>
#include "nnopbase_internal.h"

static host_ptrset g_live_executors = HOST_PTRSET_INIT;

static void executor_free(aclOpExecutor *ex)
{
    for (int i = 0; i < ex->n_inputs; i++) free(ex->inputs[i]);
    for (int i = 0; i < ex->n_outputs; i++) free(ex->outputs[i]);
    free(ex->params);
    ex->magic = 0;
    free(ex);
}

static aclnnStatus check_view(const char *api, const char *role, int i, const aclTensor *t)
{
    int64_t extent = nnop_view_extent(t);
    int64_t storage = acl_host_storage_numel(t);
    if (extent > storage)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                              "%s: %s %d: the view (offset %lld, %d dims) reaches element %lld but the storage holds "
                              "only %lld elements",
                              api, role, i, (long long)t->offset, t->ndim, (long long)(extent - 1), (long long)storage);
    return ACLNN_SUCCESS;
}

static aclnnStatus copy_tensors(const char *api, const char *role, const aclTensor *const *src, int n,
                                aclTensor **dst)
{
    for (int i = 0; i < n; i++) {
        dst[i] = NULL;
        if (!src[i]) continue;
        if (!nnop_tensor_live(src[i]))
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: %s %d is not a live aclTensor", api, role, i);
        aclnnStatus st = check_view(api, role, i, src[i]);
        if (st) return st;
        dst[i] = (aclTensor *)malloc(sizeof(aclTensor));
        if (!dst[i]) return acl_host_error(ACLNN_ERR_INNER_CREATE_EXECUTOR, "%s: out of memory", api);
        *dst[i] = *src[i];
    }
    return ACLNN_SUCCESS;
}

aclnnStatus acl_host_executor_create(const char *api, acl_host_kernel_fn kernel, const aclTensor *const *inputs,
                                     int n_inputs, const aclTensor *const *outputs, int n_outputs, const void *params,
                                     size_t params_size, uint64_t workspace_size, uint64_t *workspaceSize,
                                     aclOpExecutor **executor)
{
    if (!workspaceSize || !executor)
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: workspaceSize and executor must not be NULL", api);
    if (n_inputs > ACL_HOST_MAX_TENSORS || n_outputs > ACL_HOST_MAX_TENSORS)
        return acl_host_error(ACLNN_ERR_INNER_CREATE_EXECUTOR, "%s: too many tensors", api);
    aclOpExecutor *ex = (aclOpExecutor *)calloc(1, sizeof *ex);
    if (!ex) return acl_host_error(ACLNN_ERR_INNER_CREATE_EXECUTOR, "%s: out of memory", api);
    ex->magic = HOST_EXECUTOR_MAGIC;
    ex->api = api;
    ex->kernel = kernel;
    ex->n_inputs = n_inputs;
    ex->n_outputs = n_outputs;
    ex->workspace_size = workspace_size;
    aclnnStatus st = copy_tensors(api, "input", inputs, n_inputs, ex->inputs);
    if (!st) st = copy_tensors(api, "output", outputs, n_outputs, ex->outputs);
    if (!st && params_size) {
        ex->params = malloc(params_size);
        if (!ex->params) st = acl_host_error(ACLNN_ERR_INNER_CREATE_EXECUTOR, "%s: out of memory", api);
        else memcpy(ex->params, params, params_size);
    }
    if (!st && host_ptrset_add(&g_live_executors, ex) != 0)
        st = acl_host_error(ACLNN_ERR_INNER_CREATE_EXECUTOR, "%s: out of memory", api);
    if (st) {
        executor_free(ex);
        return st;
    }
    *workspaceSize = workspace_size;
    *executor = ex;
    return ACLNN_SUCCESS;
}

static aclnnStatus check_storage(const char *api, const char *role, int i, const aclTensor *t)
{
    int64_t extent = nnop_view_extent(t);
    if (extent == 0) return ACLNN_SUCCESS; /* an empty view touches nothing */
    if (!t->data) return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: %s %d has no data address", api, role, i);
    uint64_t nbytes = (uint64_t)extent * (uint64_t)acl_host_dtype_size(t->dtype);
    if (!acl_host_is_device_range(t->data, nbytes))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                              "%s: %s %d: its %llu bytes at %p are not inside device memory from aclrtMalloc", api,
                              role, i, (unsigned long long)nbytes, t->data);
    return ACLNN_SUCCESS;
}

aclnnStatus acl_host_executor_run(aclOpExecutor *ex, void *workspace, uint64_t workspaceSize, aclrtStream stream,
                                  const char *api)
{
    if (!ex) return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: executor must not be NULL", api);
    if (!host_ptrset_contains(&g_live_executors, ex) || ex->magic != HOST_EXECUTOR_MAGIC)
        return acl_host_error(ACLNN_ERR_INNER_NULLPTR,
                              "%s: executor %p is not live (a non-repeatable executor is freed by its second phase)",
                              api, (void *)ex);
    if (strcmp(ex->api, api) != 0)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: executor was created by %sGetWorkspaceSize", api, ex->api);
    aclnnStatus st = ACLNN_SUCCESS;
    if (workspaceSize < ex->workspace_size)
        st = acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: workspaceSize %llu is smaller than the %llu bytes required",
                            api, (unsigned long long)workspaceSize, (unsigned long long)ex->workspace_size);
    else if (ex->workspace_size && !workspace)
        st = acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: workspace must not be NULL (%llu bytes required)", api,
                            (unsigned long long)ex->workspace_size);
    else if (ex->workspace_size && !acl_host_is_device_range(workspace, ex->workspace_size))
        st = acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: workspace is not inside device memory from aclrtMalloc", api);
    else if (!acl_host_runtime_ready())
        st = acl_host_error(ACLNN_ERR_RUNTIME_ERROR, "%s: no device is set on this thread (aclInit, aclrtSetDevice)",
                            api);
    for (int i = 0; !st && i < ex->n_inputs; i++)
        if (ex->inputs[i]) st = check_storage(api, "input", i, ex->inputs[i]);
    for (int i = 0; !st && i < ex->n_outputs; i++)
        if (ex->outputs[i]) st = check_storage(api, "output", i, ex->outputs[i]);
    if (!st) {
        int e = acl_host_stream_acquire(stream);
        if (e) {
            st = acl_host_error(ACLNN_ERR_RUNTIME_ERROR, "%s: stream %p is not a live aclrtStream", api, stream);
        } else {
            st = ex->kernel(ex, workspace, workspaceSize);
            acl_host_stream_release(stream);
        }
    }
    if (!ex->repeatable && host_ptrset_remove(&g_live_executors, ex)) executor_free(ex);
    return st;
}

static aclOpExecutor *live_executor(const char *api, aclOpExecutor *ex, aclnnStatus *st)
{
    if (!ex || !host_ptrset_contains(&g_live_executors, ex)) {
        *st = acl_host_error(ACLNN_ERR_INNER_NULLPTR, "%s: executor %p is not live", api, (void *)ex);
        return NULL;
    }
    *st = ACLNN_SUCCESS;
    return ex;
}

aclnnStatus aclSetAclOpExecutorRepeatable(aclOpExecutor *executor)
{
    aclnnStatus st;
    if (!live_executor("aclSetAclOpExecutorRepeatable", executor, &st)) return st;
    executor->repeatable = 1;
    return ACLNN_SUCCESS;
}

aclnnStatus aclDestroyAclOpExecutor(aclOpExecutor *executor)
{
    aclnnStatus st;
    if (!live_executor("aclDestroyAclOpExecutor", executor, &st)) return st;
    if (!executor->repeatable)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                              "aclDestroyAclOpExecutor: the executor is not repeatable; its second phase frees it");
    if (host_ptrset_remove(&g_live_executors, executor)) executor_free(executor);
    return ACLNN_SUCCESS;
}

static aclnnStatus rebind(const char *api, aclOpExecutor *ex, size_t index, aclTensor *tensor, void *addr,
                          int outputs)
{
    aclnnStatus st;
    if (!live_executor(api, ex, &st)) return st;
    if (!ex->repeatable)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: addresses can be rebound only on a repeatable executor "
                              "(aclSetAclOpExecutorRepeatable)", api);
    int n = outputs ? ex->n_outputs : ex->n_inputs;
    aclTensor **slots = outputs ? ex->outputs : ex->inputs;
    if (index >= (size_t)n || !slots[index])
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: index %zu is not a tensor %s of %s (it has %d)", api,
                              index, outputs ? "output" : "input", ex->api, n);
    slots[index]->data = addr;
    if (tensor) {
        if (!nnop_tensor_live(tensor))
            return acl_host_error(ACLNN_ERR_INNER_NULLPTR, "%s: tensor is not a live aclTensor", api);
        tensor->data = addr;
    }
    return ACLNN_SUCCESS;
}

aclnnStatus aclSetInputTensorAddr(aclOpExecutor *executor, const size_t index, aclTensor *tensor, void *addr)
{
    return rebind("aclSetInputTensorAddr", executor, index, tensor, addr, 0);
}

aclnnStatus aclSetOutputTensorAddr(aclOpExecutor *executor, const size_t index, aclTensor *tensor, void *addr)
{
    return rebind("aclSetOutputTensorAddr", executor, index, tensor, addr, 1);
}

/* inputs then outputs in one numbering */
aclnnStatus aclSetTensorAddr(aclOpExecutor *executor, const size_t index, aclTensor *tensor, void *addr)
{
    aclnnStatus st;
    if (!live_executor("aclSetTensorAddr", executor, &st)) return st;
    if (index < (size_t)executor->n_inputs) return rebind("aclSetTensorAddr", executor, index, tensor, addr, 0);
    return rebind("aclSetTensorAddr", executor, index - (size_t)executor->n_inputs, tensor, addr, 1);
}

static aclnnStatus no_dynamic(const char *api, aclOpExecutor *ex)
{
    aclnnStatus st;
    if (!live_executor(api, ex, &st)) return st;
    return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: %s has no dynamic (tensor-list) inputs or outputs", api,
                          ex->api);
}

aclnnStatus aclSetDynamicInputTensorAddr(aclOpExecutor *executor, size_t irIndex, const size_t relativeIndex,
                                         aclTensorList *tensors, void *addr)
{
    (void)irIndex; (void)relativeIndex; (void)tensors; (void)addr;
    return no_dynamic("aclSetDynamicInputTensorAddr", executor);
}

aclnnStatus aclSetDynamicOutputTensorAddr(aclOpExecutor *executor, size_t irIndex, const size_t relativeIndex,
                                          aclTensorList *tensors, void *addr)
{
    (void)irIndex; (void)relativeIndex; (void)tensors; (void)addr;
    return no_dynamic("aclSetDynamicOutputTensorAddr", executor);
}

aclnnStatus aclSetDynamicTensorAddr(aclOpExecutor *executor, size_t irIndex, const size_t relativeIndex,
                                    aclTensorList *tensors, void *addr)
{
    (void)irIndex; (void)relativeIndex; (void)tensors; (void)addr;
    return no_dynamic("aclSetDynamicTensorAddr", executor);
}
