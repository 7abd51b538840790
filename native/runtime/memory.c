/* Device and host memory of the host runtime. "Device" memory is host memory, but it is only what aclrtMalloc
 * handed out: the live blocks are kept in an address-ordered table, so copies and kernels can check that every
 * device-side byte they touch lies inside one block (a wrong size or a stale pointer is an error, not a crash). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../common/host_internal.h"
#include "../common/ptrset.h"

#define HOST_DEVICE_ALIGN 64 /* the NPU guarantees 32-byte aligned device addresses; cache lines want 64 */

typedef struct {
    uintptr_t base;
    size_t size;
} block;

static pthread_rwlock_t g_blocks_lock = PTHREAD_RWLOCK_INITIALIZER;
static block *g_blocks;
static size_t g_nblocks, g_capblocks;
static size_t g_device_bytes;
static host_ptrset g_host_allocs = HOST_PTRSET_INIT;

/* index of the first block with base > p */
static size_t upper_bound(uintptr_t p)
{
    size_t lo = 0, hi = g_nblocks;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g_blocks[mid].base <= p) lo = mid + 1; else hi = mid;
    }
    return lo;
}

int acl_host_is_device_range(const void *ptr, uint64_t nbytes)
{
    uintptr_t p = (uintptr_t)ptr;
    if (!ptr) return 0;
    pthread_rwlock_rdlock(&g_blocks_lock);
    size_t i = upper_bound(p);
    int ok = i > 0 && p - g_blocks[i - 1].base <= g_blocks[i - 1].size &&
             nbytes <= g_blocks[i - 1].size - (p - g_blocks[i - 1].base);
    pthread_rwlock_unlock(&g_blocks_lock);
    return ok;
}

static aclError device_malloc(const char *api, void **devPtr, size_t size, aclrtMemMallocPolicy policy)
{
    if (!devPtr) return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: devPtr must not be NULL", api);
    if (size == 0) return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: size must be greater than 0", api);
    int base_policy = (int)policy & 0xff;
    if (base_policy > ACL_MEM_MALLOC_HUGE1G_ONLY_P2P)
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: unknown memory policy 0x%x", api, (unsigned)policy);
    if (!acl_host_runtime_ready())
        return acl_host_error(ACL_ERROR_RT_CONTEXT_NULL, "%s: no device is set on this thread (aclrtSetDevice)", api);
    if (size > SIZE_MAX - HOST_DEVICE_ALIGN)
        return acl_host_error(ACL_ERROR_RT_MEMORY_ALLOCATION, "%s: cannot allocate %zu bytes", api, size);
    size_t rounded = (size + HOST_DEVICE_ALIGN - 1) / HOST_DEVICE_ALIGN * HOST_DEVICE_ALIGN;
    void *p = aligned_alloc(HOST_DEVICE_ALIGN, rounded);
    if (!p) return acl_host_error(ACL_ERROR_RT_MEMORY_ALLOCATION, "%s: cannot allocate %zu bytes", api, size);
    pthread_rwlock_wrlock(&g_blocks_lock);
    if (g_nblocks == g_capblocks) {
        size_t ncap = g_capblocks ? g_capblocks * 2 : 256;
        block *nb = (block *)realloc(g_blocks, ncap * sizeof(block));
        if (!nb) {
            pthread_rwlock_unlock(&g_blocks_lock);
            free(p);
            return acl_host_error(ACL_ERROR_RT_MEMORY_ALLOCATION, "%s: out of memory", api);
        }
        g_blocks = nb;
        g_capblocks = ncap;
    }
    size_t i = upper_bound((uintptr_t)p);
    memmove(&g_blocks[i + 1], &g_blocks[i], (g_nblocks - i) * sizeof(block));
    g_blocks[i].base = (uintptr_t)p;
    g_blocks[i].size = size; /* the caller may touch `size` bytes, not the rounding */
    g_nblocks++;
    g_device_bytes += size;
    pthread_rwlock_unlock(&g_blocks_lock);
    *devPtr = p;
    return ACL_SUCCESS;
}

aclError aclrtMalloc(void **devPtr, size_t size, aclrtMemMallocPolicy policy)
{
    return device_malloc("aclrtMalloc", devPtr, size, policy);
}

aclError aclrtMallocAlign32(void **devPtr, size_t size, aclrtMemMallocPolicy policy)
{
    return device_malloc("aclrtMallocAlign32", devPtr, size, policy);
}

aclError aclrtFree(void *devPtr)
{
    if (!devPtr) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtFree: devPtr must not be NULL");
    pthread_rwlock_wrlock(&g_blocks_lock);
    size_t i = upper_bound((uintptr_t)devPtr);
    int found = i > 0 && g_blocks[i - 1].base == (uintptr_t)devPtr;
    if (found) {
        g_device_bytes -= g_blocks[i - 1].size;
        memmove(&g_blocks[i - 1], &g_blocks[i], (g_nblocks - i) * sizeof(block));
        g_nblocks--;
    }
    pthread_rwlock_unlock(&g_blocks_lock);
    if (!found)
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtFree: %p is not the start of a live aclrtMalloc block",
                              devPtr);
    free(devPtr);
    return ACL_SUCCESS;
}

aclError aclrtMallocHost(void **hostPtr, size_t size)
{
    if (!hostPtr) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtMallocHost: hostPtr must not be NULL");
    if (size == 0) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtMallocHost: size must be greater than 0");
    size_t rounded = (size + HOST_DEVICE_ALIGN - 1) / HOST_DEVICE_ALIGN * HOST_DEVICE_ALIGN;
    void *p = rounded >= size ? aligned_alloc(HOST_DEVICE_ALIGN, rounded) : NULL;
    if (!p || host_ptrset_add(&g_host_allocs, p) != 0) {
        free(p);
        return acl_host_error(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMallocHost: cannot allocate %zu bytes", size);
    }
    *hostPtr = p;
    return ACL_SUCCESS;
}

aclError aclrtFreeHost(void *hostPtr)
{
    if (!hostPtr || !host_ptrset_remove(&g_host_allocs, hostPtr))
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtFreeHost: %p is not a live aclrtMallocHost block",
                              hostPtr);
    free(hostPtr);
    return ACL_SUCCESS;
}

static aclError check_copy(const char *api, void *dst, size_t destMax, const void *src, size_t count,
                           aclrtMemcpyKind kind)
{
    if (!dst || !src) return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: dst and src must not be NULL", api);
    if (count > destMax)
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: count (%zu) exceeds destMax (%zu)", api, count, destMax);
    int dst_dev, src_dev;
    switch (kind) {
    case ACL_MEMCPY_HOST_TO_HOST: dst_dev = 0; src_dev = 0; break;
    case ACL_MEMCPY_HOST_TO_DEVICE: case ACL_MEMCPY_HOST_TO_BUF_TO_DEVICE: dst_dev = 1; src_dev = 0; break;
    case ACL_MEMCPY_DEVICE_TO_HOST: dst_dev = 0; src_dev = 1; break;
    case ACL_MEMCPY_DEVICE_TO_DEVICE: case ACL_MEMCPY_INNER_DEVICE_TO_DEVICE: case ACL_MEMCPY_INTER_DEVICE_TO_DEVICE:
        dst_dev = 1; src_dev = 1; break;
    case ACL_MEMCPY_DEFAULT: /* the runtime infers the direction from the addresses */
        dst_dev = acl_host_is_device_range(dst, count);
        src_dev = acl_host_is_device_range(src, count);
        break;
    default: return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: unknown memcpy kind %d", api, (int)kind);
    }
    if (dst_dev && !acl_host_is_device_range(dst, count))
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: dst [%p, +%zu) is not inside device memory from aclrtMalloc",
                              api, dst, count);
    if (src_dev && !acl_host_is_device_range(src, count))
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: src [%p, +%zu) is not inside device memory from aclrtMalloc",
                              api, src, count);
    return ACL_SUCCESS;
}

aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count, aclrtMemcpyKind kind)
{
    if (count == 0) return ACL_SUCCESS;
    aclError e = check_copy("aclrtMemcpy", dst, destMax, src, count, kind);
    if (e) return e;
    memmove(dst, src, count);
    return ACL_SUCCESS;
}

aclError aclrtMemcpyAsync(void *dst, size_t destMax, const void *src, size_t count, aclrtMemcpyKind kind,
                          aclrtStream stream)
{
    if (count == 0) return ACL_SUCCESS;
    aclError e = check_copy("aclrtMemcpyAsync", dst, destMax, src, count, kind);
    if (e) return e;
    if ((e = acl_host_stream_acquire(stream)) != ACL_SUCCESS) return e;
    memmove(dst, src, count);
    acl_host_stream_release(stream);
    return ACL_SUCCESS;
}

static aclError do_memset(const char *api, void *devPtr, size_t maxCount, int32_t value, size_t count,
                          aclrtStream stream, int async)
{
    if (!devPtr) return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: devPtr must not be NULL", api);
    if (count > maxCount)
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: count (%zu) exceeds maxCount (%zu)", api, count, maxCount);
    if (count == 0) return ACL_SUCCESS;
    if (!acl_host_is_device_range(devPtr, count))
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: [%p, +%zu) is not inside device memory from aclrtMalloc",
                              api, devPtr, count);
    aclError e;
    if (async && (e = acl_host_stream_acquire(stream)) != ACL_SUCCESS) return e;
    memset(devPtr, value, count);
    if (async) acl_host_stream_release(stream);
    return ACL_SUCCESS;
}

aclError aclrtMemset(void *devPtr, size_t maxCount, int32_t value, size_t count)
{
    return do_memset("aclrtMemset", devPtr, maxCount, value, count, NULL, 0);
}

aclError aclrtMemsetAsync(void *devPtr, size_t maxCount, int32_t value, size_t count, aclrtStream stream)
{
    return do_memset("aclrtMemsetAsync", devPtr, maxCount, value, count, stream, 1);
}

aclError aclrtGetMemInfo(aclrtMemAttr attr, size_t *free_bytes, size_t *total)
{
    if (!free_bytes || !total)
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtGetMemInfo: free and total must not be NULL");
    if ((int)attr < ACL_DDR_MEM || (int)attr > ACL_MEM_P2P_HUGE1G)
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtGetMemInfo: unknown memory attribute %d", (int)attr);
    long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    *total = pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz : 0;
    *free_bytes = avail > 0 && psz > 0 ? (size_t)avail * (size_t)psz : 0;
    return ACL_SUCCESS;
}
