/* Executors: the object phase 1 returns and phase 2 consumes. An executor owns copies of the tensor
 * descriptors and of the op's parameters, so the caller's descriptors may change after phase 1 without
 * affecting it; addresses are rebound only through aclSet*TensorAddr.
 *
 * Phase 2 (acl_host_executor_run) checks, in this order, with these status codes:
 *   executor NULL                                              161001 ACLNN_ERR_PARAM_NULLPTR
 *   executor not live (destroyed, consumed, wild)              561103 ACLNN_ERR_INNER_NULLPTR
 *   executor of another operator                               161002
 *   workspaceSize > 0 with a NULL workspace (as CANN: the size passed is tested, even if the operator needs none)
 *                                                              161001
 *   workspaceSize smaller than phase 1 computed                161002
 *   no aclInit / aclrtSetDevice on this thread                 361001 ACLNN_ERR_RUNTIME_ERROR
 *   a data address not aligned to its element size             161002 (the NPU needs 32-byte aligned addresses;
 *                                                              the host enforces the element size, which is what
 *                                                              its kernels' loads and stores need)
 *   an operand or the workspace (phase 1's size) not inside one live device block (aclrtMalloc or
 *   aclrtHostRegister)                                         161002
 *   an output overlapping another output, an input or the workspace, or an input overlapping the workspace
 *   (byte ranges of the views in their storage; inputs may overlap inputs)
 *                                                              161002, naming both C parameters
 *   a stream that is not live                                  361001
 * The kernel is given only the workspace phase 1 computed (its size, not the caller's workspaceSize), and the
 * blocks it uses are pinned while it runs (aclrtFree of them fails instead of freeing them under it). A
 * non-repeatable executor is freed by phase 2 whatever the outcome, as CANN does. No operator of this library is
 * documented to work in place, so no operand pair is exempt from the overlap check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nnopbase_internal.h"
#include "op_param_names.h"

host_ptrset g_live_executors = HOST_PTRSET_INIT;

static void executor_free(aclOpExecutor *ex)
{
    for (int i = 0; i < ex->n_inputs; i++) free(ex->inputs[i]);
    for (int i = 0; i < ex->n_outputs; i++) free(ex->outputs[i]);
    free(ex->params);
    ex->magic = 0;
    free(ex);
}

/* the C name of tensor parameter `index` (inputs first) of the operator, from its prototype in include/ */
static const char *param_name(const char *api, int index, char *buf, size_t cap)
{
    for (int i = 0; NNOP_PARAM_NAMES[i].api; i++) {
        if (strcmp(NNOP_PARAM_NAMES[i].api, api) != 0) continue;
        const char *p = NNOP_PARAM_NAMES[i].names;
        for (int k = 0; k < index && p; k++) {
            p = strchr(p, ',');
            if (p) p++;
        }
        if (!p || !*p) break;
        size_t n = strcspn(p, ",");
        if (n >= cap) n = cap - 1;
        memcpy(buf, p, n);
        buf[n] = 0;
        return buf;
    }
    snprintf(buf, cap, "tensor %d", index);
    return buf;
}

static const char *role_name(const aclOpExecutor *ex, const char *api, int is_output, int i, char *buf, size_t cap)
{
    return param_name(api, is_output ? ex->n_inputs + i : i, buf, cap);
}

static aclnnStatus check_view(const char *api, const char *name, const aclTensor *t)
{
    int64_t extent = nnop_view_extent(t);
    int64_t storage = acl_host_storage_numel(t);
    if (extent > storage)
        return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                              "%s: %s: the view (offset %lld, %d dims) reaches element %lld but the storage holds "
                              "only %lld elements",
                              api, name, (long long)t->offset, t->ndim, (long long)(extent - 1), (long long)storage);
    return ACLNN_SUCCESS;
}

static aclnnStatus copy_tensors(const char *api, const char *name_api, int base, const aclTensor *const *src, int n,
                                aclTensor **dst)
{
    char name[64];
    for (int i = 0; i < n; i++) {
        dst[i] = NULL;
        if (!src[i]) continue;
        if (!nnop_tensor_live(src[i]))
            return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: %s is not a live aclTensor", api,
                                  param_name(name_api, base + i, name, sizeof name));
        aclnnStatus st = check_view(api, param_name(name_api, base + i, name, sizeof name), src[i]);
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
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%sGetWorkspaceSize: workspaceSize and executor must not be "
                              "NULL", api);
    if (n_inputs < 0 || n_outputs < 0 || n_inputs > ACL_HOST_MAX_TENSORS || n_outputs > ACL_HOST_MAX_TENSORS)
        return acl_host_error(ACLNN_ERR_INNER_CREATE_EXECUTOR, "%s: too many tensors", api);
    aclOpExecutor *ex = (aclOpExecutor *)calloc(1, sizeof *ex);
    if (!ex) return acl_host_error(ACLNN_ERR_INNER_CREATE_EXECUTOR, "%s: out of memory", api);
    ex->magic = HOST_EXECUTOR_MAGIC;
    ex->api = api;
    ex->kernel = kernel;
    ex->n_inputs = n_inputs;
    ex->n_outputs = n_outputs;
    ex->workspace_size = workspace_size;
    char phase1[96];
    snprintf(phase1, sizeof phase1, "%sGetWorkspaceSize", api);
    aclnnStatus st = copy_tensors(phase1, api, 0, inputs, n_inputs, ex->inputs);
    if (!st) st = copy_tensors(phase1, api, n_inputs, outputs, n_outputs, ex->outputs);
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

/* ---- phase 2 ---- */

typedef struct {
    uintptr_t begin, end;  /* bytes the operand may touch: [begin, end); begin == end: touches nothing */
    const void *pinned;    /* address passed to acl_host_device_pin, NULL when not pinned */
    int is_output;
    int index;             /* within inputs / outputs; -1: the workspace */
} operand_range;

static const char *range_name(const aclOpExecutor *ex, const char *api, const operand_range *r, char *buf, size_t cap)
{
    if (r->index < 0) {
        snprintf(buf, cap, "workspace");
        return buf;
    }
    return role_name(ex, api, r->is_output, r->index, buf, cap);
}

/* alignment and device range of one operand; pins its block */
static aclnnStatus check_storage(const aclOpExecutor *ex, const char *api, int is_output, int i, const aclTensor *t,
                                 operand_range *r)
{
    char name[64];
    int64_t extent = nnop_view_extent(t);
    int64_t es = acl_host_dtype_size(t->dtype);
    r->is_output = is_output;
    r->index = i;
    r->pinned = NULL;
    r->begin = r->end = (uintptr_t)t->data;
    if (extent == 0) return ACLNN_SUCCESS; /* an empty view touches nothing */
    if (!t->data)
        return acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: %s has no data address", api,
                              role_name(ex, api, is_output, i, name, sizeof name));
    /* the parameter's name is looked up only to report a failure (it costs more than the checks) */
    if (es > 0 && (uintptr_t)t->data % (uintptr_t)es != 0)
        return nnop_check_alignment(api, role_name(ex, api, is_output, i, name, sizeof name), t->data, t->dtype);
    uint64_t nbytes = (uint64_t)extent * (uint64_t)es; /* fits: checked when the descriptor was made */
    if (!acl_host_device_pin(t->data, nbytes))
        return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                              "%s: %s: its %llu bytes at %p are not inside device memory from aclrtMalloc (or "
                              "aclrtHostRegister)",
                              api, role_name(ex, api, is_output, i, name, sizeof name), (unsigned long long)nbytes,
                              t->data);
    r->pinned = t->data;
    r->begin = (uintptr_t)t->data + (uintptr_t)(t->offset * es);
    r->end = (uintptr_t)t->data + (uintptr_t)nbytes;
    return ACLNN_SUCCESS;
}

static int ranges_overlap(const operand_range *a, const operand_range *b)
{
    return a->begin < a->end && b->begin < b->end && a->begin < b->end && b->begin < a->end;
}

static aclnnStatus check_overlaps(const aclOpExecutor *ex, const char *api, const operand_range *r, int n)
{
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            /* inputs may share memory with each other: they are only read */
            int writes = r[i].is_output || r[j].is_output || r[i].index < 0 || r[j].index < 0;
            if (!writes || !ranges_overlap(&r[i], &r[j])) continue;
            char a[64], b[64];
            return acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                  "%s: %s and %s overlap in memory (bytes [%p, %p) and [%p, %p)); an operator's "
                                  "outputs and workspace must not share memory with any other operand",
                                  api, range_name(ex, api, &r[i], a, sizeof a), range_name(ex, api, &r[j], b, sizeof b),
                                  (void *)r[i].begin, (void *)r[i].end, (void *)r[j].begin, (void *)r[j].end);
        }
    }
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
    aclnnStatus st = ACLNN_SUCCESS;
    operand_range ranges[2 * ACL_HOST_MAX_TENSORS + 1];
    int n = 0;
    if (ex->api != api && strcmp(ex->api, api) != 0)
        st = acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: executor was created by %sGetWorkspaceSize", api, ex->api);
    else if (workspaceSize > 0 && !workspace)
        st = acl_host_error(ACLNN_ERR_PARAM_NULLPTR, "%s: workspace is NULL but workspaceSize is %llu", api,
                            (unsigned long long)workspaceSize);
    else if (workspaceSize < ex->workspace_size)
        st = acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: workspaceSize %llu is smaller than the %llu bytes required",
                            api, (unsigned long long)workspaceSize, (unsigned long long)ex->workspace_size);
    else if (!acl_host_runtime_ready())
        st = acl_host_error(ACLNN_ERR_RUNTIME_ERROR, "%s: no device is set on this thread (aclInit, aclrtSetDevice)",
                            api);
    for (int i = 0; !st && i < ex->n_inputs; i++)
        if (ex->inputs[i]) st = check_storage(ex, api, 0, i, ex->inputs[i], &ranges[n++]);
    for (int i = 0; !st && i < ex->n_outputs; i++)
        if (ex->outputs[i]) st = check_storage(ex, api, 1, i, ex->outputs[i], &ranges[n++]);
    if (!st && ex->workspace_size) {
        operand_range *w = &ranges[n++];
        w->is_output = 0;
        w->index = -1;
        w->pinned = NULL;
        w->begin = w->end = (uintptr_t)workspace;
        /* kernels keep int64 / fp32 scratch in the workspace: an address off an 8-byte boundary (aclrtMalloc
         * gives 64) would make them load and store misaligned (issue 12 class 5, found by native/fuzz) */
        if ((uintptr_t)workspace % 8 != 0) {
            st = acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                "%s: workspace %p is not 8-byte aligned (device memory from aclrtMalloc is)", api,
                                workspace);
        } else if (!acl_host_device_pin(workspace, ex->workspace_size)) {
            st = acl_host_error(ACLNN_ERR_PARAM_INVALID,
                                "%s: workspace [%p, +%llu) is not inside one block of device memory from aclrtMalloc",
                                api, workspace, (unsigned long long)ex->workspace_size);
        } else {
            w->pinned = workspace;
            w->end = (uintptr_t)workspace + ex->workspace_size;
        }
    }
    if (!st) st = check_overlaps(ex, api, ranges, n);
    if (!st) {
        int e = acl_host_stream_acquire(stream);
        if (e) {
            st = acl_host_error(ACLNN_ERR_RUNTIME_ERROR, "%s: stream %p is not a live aclrtStream", api, stream);
        } else {
            /* only what phase 1 asked for: a larger workspaceSize than the block must not widen the kernel's view */
            st = ex->kernel(ex, ex->workspace_size ? workspace : NULL, ex->workspace_size);
            acl_host_stream_release(stream);
        }
    }
    for (int i = 0; i < n; i++)
        if (ranges[i].pinned) acl_host_device_unpin(ranges[i].pinned);
    if (!ex->repeatable && host_ptrset_remove(&g_live_executors, ex)) executor_free(ex);
    return st;
}

/* ---- executor API ---- */

static aclOpExecutor *live_executor(const char *api, aclOpExecutor *ex, aclnnStatus *st)
{
    if (!ex || !host_ptrset_contains(&g_live_executors, ex) || ex->magic != HOST_EXECUTOR_MAGIC) {
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

/* As CANN: any live executor is deleted (a non-repeatable one that phase 2 will never consume, too). */
aclnnStatus aclDestroyAclOpExecutor(aclOpExecutor *executor)
{
    aclnnStatus st;
    if (!live_executor("aclDestroyAclOpExecutor", executor, &st)) return st;
    if (host_ptrset_remove(&g_live_executors, executor)) executor_free(executor);
    return ACLNN_SUCCESS;
}

/* aclSet{Input,Output}TensorAddr, in CANN's order: the tensor first (NULL or not live: 561103), then the executor
 * (561103). As CANN, a non-repeatable executor may be rebound too (before its phase 2). Host checks, documented:
 * the index must name a present tensor of the executor (161002, as CANN documents for its generated operators:
 * the host's executors keep their own descriptor copies, found by that index), and the address must be aligned
 * to the element size (161002). */
static aclnnStatus rebind(const char *api, aclOpExecutor *ex, size_t index, aclTensor *tensor, void *addr,
                          int outputs)
{
    aclnnStatus st;
    if (!tensor) return acl_host_error(ACLNN_ERR_INNER_NULLPTR, "%s: tensor must not be NULL", api);
    if (!nnop_tensor_live(tensor))
        return acl_host_error(ACLNN_ERR_INNER_NULLPTR, "%s: tensor %p is not a live aclTensor", api, (void *)tensor);
    if (!live_executor(api, ex, &st)) return st;
    int n = outputs ? ex->n_outputs : ex->n_inputs;
    aclTensor **slots = outputs ? ex->outputs : ex->inputs;
    if (index >= (size_t)n || !slots[index])
        return acl_host_error(ACLNN_ERR_PARAM_INVALID, "%s: index %zu is not a tensor %s of %s (it has %d)", api,
                              index, outputs ? "output" : "input", ex->api, n);
    if ((st = nnop_check_alignment(api, "addr", addr, slots[index]->dtype)) != ACLNN_SUCCESS) return st;
    slots[index]->data = addr;
    tensor->data = addr;
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
    if (!tensor) return acl_host_error(ACLNN_ERR_INNER_NULLPTR, "aclSetTensorAddr: tensor must not be NULL");
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
