/* Device and host memory of the host runtime. "Device" memory is host memory, but it is only what aclrtMalloc
 * handed out or aclrtHostRegister registered: the live blocks are kept in an address-ordered table, so copies
 * and kernels can check that every device-side byte they touch lies inside one block (a wrong size or a stale
 * pointer is an error, not a crash).
 *
 * aclrtMalloc is a real allocator (issue 13 item 4):
 *  - blocks below HOST_MAP_MIN come from aligned_alloc (the C library pools those already);
 *  - larger blocks are their own mappings. The HUGE policies (HUGE_FIRST, HUGE_ONLY, HUGE1G_ONLY and their P2P
 *    twins) align them to 2 MB and ask for transparent huge pages (madvise MADV_HUGEPAGE: best effort, the host
 *    cannot promise huge pages, so HUGE_ONLY behaves as HUGE_FIRST); NORMAL_ONLY asks for small pages;
 *  - a freed mapping goes to a bounded pool (ACLNN_MOE_DEVICE_POOL_BYTES, default min(RAM/8, 4 GB); 0 turns the
 *    pool off) and is handed out again to a request of about its size, so its pages are faulted in once, not on
 *    every call. The pool drops its oldest mappings when over the cap and returns everything to the OS on
 *    aclFinalize. Pooled mappings are not live blocks: the range checks stay exact (a block's size is what its
 *    caller asked for, and freed memory is never device memory).
 * Under AddressSanitizer the bytes past a mapped block's size and every pooled mapping are poisoned, so
 * overruns and use-after-free of large blocks are still reported.
 *
 * Blocks in use by a running kernel or copy are pinned (acl_host_device_pin): aclrtFree / aclrtHostUnregister of
 * a pinned block fail with ACL_ERROR_RT_MEMORY_FREE (207002) instead of freeing memory under the kernel. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "../common/host_internal.h"
#include "../common/ptrset.h"
#include "runtime_internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define HOST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOST_ASAN 1
#endif
#endif
#ifdef HOST_ASAN
#include <sanitizer/asan_interface.h>
#define HOST_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define HOST_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define HOST_POISON(p, n) ((void)(p), (void)(n))
#define HOST_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define HOST_DEVICE_ALIGN 64               /* the NPU guarantees 32-byte aligned device addresses; cache lines want 64 */
#define HOST_MAP_MIN ((size_t)1 << 20)     /* blocks from this size up are their own mappings (and pooled) */
#define HOST_HUGE_PAGE ((size_t)2 << 20)
#define HOST_MAP_GRANULE ((size_t)64 << 10)
#define HOST_POOL_MAX_ENTRIES 64

enum { BLOCK_HEAP, BLOCK_MAPPED, BLOCK_REGISTERED };
enum { PAGES_DEFAULT, PAGES_HUGE, PAGES_NORMAL };

typedef struct {
    uintptr_t base;
    size_t size;      /* bytes the caller may touch */
    size_t map_len;   /* BLOCK_MAPPED: length of the mapping at base */
    int kind;
    int pages;
    atomic_int pins;  /* running kernels / copies using the block */
} block;

typedef struct {
    uintptr_t base;
    size_t map_len;
    int pages;
    uint64_t stamp;   /* pool age, for dropping the oldest */
} pooled;

/* One lock for the block table and the pool: lookups (range checks, pins) read, allocation and free write. */
static pthread_rwlock_t g_blocks_lock = PTHREAD_RWLOCK_INITIALIZER;
static block *g_blocks;
static size_t g_nblocks, g_capblocks;
static pooled g_pool[HOST_POOL_MAX_ENTRIES];
static size_t g_npool, g_pool_bytes;
static uint64_t g_pool_clock;
static size_t g_pool_cap = (size_t)-1; /* (size_t)-1: not read yet */
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

/* the block holding [p, p + nbytes), or NULL; caller holds the lock */
static block *find_range(uintptr_t p, uint64_t nbytes)
{
    size_t i = upper_bound(p);
    if (i == 0) return NULL;
    block *b = &g_blocks[i - 1];
    if (p - b->base > b->size || nbytes > b->size - (p - b->base)) return NULL;
    return b;
}

int acl_host_is_device_range(const void *ptr, uint64_t nbytes)
{
    if (!ptr) return 0;
    pthread_rwlock_rdlock(&g_blocks_lock);
    int ok = find_range((uintptr_t)ptr, nbytes) != NULL;
    pthread_rwlock_unlock(&g_blocks_lock);
    return ok;
}

int acl_host_device_pin(const void *ptr, uint64_t nbytes)
{
    if (!ptr) return 0;
    pthread_rwlock_rdlock(&g_blocks_lock);
    block *b = find_range((uintptr_t)ptr, nbytes);
    if (b) atomic_fetch_add(&b->pins, 1);
    pthread_rwlock_unlock(&g_blocks_lock);
    return b != NULL;
}

void acl_host_device_unpin(const void *ptr)
{
    pthread_rwlock_rdlock(&g_blocks_lock);
    block *b = find_range((uintptr_t)ptr, 0); /* a pinned block cannot have been freed */
    if (b) atomic_fetch_sub(&b->pins, 1);
    pthread_rwlock_unlock(&g_blocks_lock);
}

/* ---- the pool of freed mappings (caller holds the write lock) ---- */

static size_t pool_cap(void)
{
    if (g_pool_cap == (size_t)-1) {
        const char *env = getenv("ACLNN_MOE_DEVICE_POOL_BYTES");
        if (env && *env) {
            g_pool_cap = (size_t)strtoull(env, NULL, 0);
        } else {
            long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
            size_t ram = pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz : 0;
            size_t cap = ram / 8, max = (size_t)4 << 30;
            g_pool_cap = cap < max ? cap : max;
        }
    }
    return g_pool_cap;
}

static void unmap(uintptr_t base, size_t len)
{
    HOST_UNPOISON((void *)base, len); /* a later mapping at this address must not inherit the poison */
    munmap((void *)base, len);
}

static void pool_drop(size_t i)
{
    unmap(g_pool[i].base, g_pool[i].map_len);
    g_pool_bytes -= g_pool[i].map_len;
    g_pool[i] = g_pool[--g_npool];
}

/* keeps the mapping for reuse, or unmaps it when the pool cannot hold it */
static void pool_put(uintptr_t base, size_t map_len, int pages)
{
    size_t cap = pool_cap();
    if (map_len > cap) { unmap(base, map_len); return; }
    while (g_npool > 0 && (g_npool == HOST_POOL_MAX_ENTRIES || g_pool_bytes + map_len > cap)) {
        size_t oldest = 0;
        for (size_t i = 1; i < g_npool; i++)
            if (g_pool[i].stamp < g_pool[oldest].stamp) oldest = i;
        pool_drop(oldest);
    }
    HOST_POISON((void *)base, map_len);
    g_pool[g_npool].base = base;
    g_pool[g_npool].map_len = map_len;
    g_pool[g_npool].pages = pages;
    g_pool[g_npool].stamp = ++g_pool_clock;
    g_npool++;
    g_pool_bytes += map_len;
}

/* smallest pooled mapping of the page kind with a length in [need, need + need/4], removed from the pool */
static uintptr_t pool_take(size_t need, int pages, size_t *map_len)
{
    size_t best = g_npool;
    for (size_t i = 0; i < g_npool; i++)
        if (g_pool[i].pages == pages && g_pool[i].map_len >= need && g_pool[i].map_len - need <= need / 4 &&
            (best == g_npool || g_pool[i].map_len < g_pool[best].map_len))
            best = i;
    if (best == g_npool) return 0;
    uintptr_t base = g_pool[best].base;
    *map_len = g_pool[best].map_len;
    g_pool_bytes -= *map_len;
    g_pool[best] = g_pool[--g_npool];
    return base;
}

void host_memory_release_pool(void)
{
    pthread_rwlock_wrlock(&g_blocks_lock);
    while (g_npool > 0) pool_drop(g_npool - 1);
    pthread_rwlock_unlock(&g_blocks_lock);
}

void acl_host_device_pool_stats(uint64_t *pooled_bytes, uint64_t *pooled_blocks, uint64_t *cap)
{
    pthread_rwlock_rdlock(&g_blocks_lock);
    if (pooled_bytes) *pooled_bytes = g_pool_bytes;
    if (pooled_blocks) *pooled_blocks = g_npool;
    pthread_rwlock_unlock(&g_blocks_lock);
    if (cap) {
        pthread_rwlock_wrlock(&g_blocks_lock);
        *cap = pool_cap();
        pthread_rwlock_unlock(&g_blocks_lock);
    }
}

/* a fresh mapping of at least `len` bytes (2 MB aligned for huge pages), advised as asked */
static uintptr_t map_new(size_t len, int pages)
{
    size_t align = pages == PAGES_HUGE && len >= HOST_HUGE_PAGE ? HOST_HUGE_PAGE : 0;
    size_t total = len + align;
    if (total < len) return 0;
    void *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 0;
    uintptr_t base = (uintptr_t)m;
    if (align) { /* trim to an aligned window so the kernel can back it with whole huge pages */
        uintptr_t aligned = (base + align - 1) & ~(uintptr_t)(align - 1);
        if (aligned > base) munmap(m, aligned - base);
        if (aligned + len < base + total) munmap((void *)(aligned + len), base + total - (aligned + len));
        base = aligned;
    }
#ifdef MADV_HUGEPAGE
    if (pages == PAGES_HUGE) madvise((void *)base, len, MADV_HUGEPAGE);
    if (pages == PAGES_NORMAL) madvise((void *)base, len, MADV_NOHUGEPAGE);
#endif
    return base;
}

/* inserts a block; caller holds the write lock. Registrations that overlap memory the C library just handed
 * out are stale (their memory was freed while registered): they are dropped so the table stays disjoint. */
static int insert_block(const block *nb)
{
    size_t i = upper_bound(nb->base);
    while (i > 0 && g_blocks[i - 1].kind == BLOCK_REGISTERED && g_blocks[i - 1].base + g_blocks[i - 1].size > nb->base) {
        memmove(&g_blocks[i - 1], &g_blocks[i], (g_nblocks - i) * sizeof(block));
        g_nblocks--;
        i--;
    }
    while (i < g_nblocks && g_blocks[i].kind == BLOCK_REGISTERED && g_blocks[i].base < nb->base + nb->size) {
        memmove(&g_blocks[i], &g_blocks[i + 1], (g_nblocks - i - 1) * sizeof(block));
        g_nblocks--;
    }
    if (g_nblocks == g_capblocks) {
        size_t ncap = g_capblocks ? g_capblocks * 2 : 256;
        block *tab = (block *)realloc(g_blocks, ncap * sizeof(block));
        if (!tab) return -1;
        g_blocks = tab;
        g_capblocks = ncap;
    }
    memmove(&g_blocks[i + 1], &g_blocks[i], (g_nblocks - i) * sizeof(block));
    g_blocks[i] = *nb;
    atomic_init(&g_blocks[i].pins, 0);
    g_nblocks++;
    return 0;
}

static int policy_pages(int base_policy)
{
    switch (base_policy) {
    case ACL_MEM_MALLOC_NORMAL_ONLY: case ACL_MEM_MALLOC_NORMAL_ONLY_P2P: return PAGES_NORMAL;
    default: return PAGES_HUGE;
    }
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
    if (size > SIZE_MAX - HOST_HUGE_PAGE * 2)
        return acl_host_error(ACL_ERROR_RT_MEMORY_ALLOCATION, "%s: cannot allocate %zu bytes", api, size);
    block nb;
    memset(&nb, 0, sizeof nb);
    nb.size = size; /* the caller may touch `size` bytes, not the rounding */
    nb.pages = policy_pages(base_policy);
    pthread_rwlock_wrlock(&g_blocks_lock);
    if (size >= HOST_MAP_MIN) {
        size_t granule = size >= HOST_HUGE_PAGE ? HOST_HUGE_PAGE : HOST_MAP_GRANULE;
        size_t need = (size + granule - 1) / granule * granule;
        nb.kind = BLOCK_MAPPED;
        nb.base = pool_take(need, nb.pages, &nb.map_len);
        if (nb.base) {
            HOST_UNPOISON((void *)nb.base, size);
        } else {
            nb.base = map_new(need, nb.pages);
            nb.map_len = need;
        }
        if (nb.base) HOST_POISON((void *)(nb.base + size), nb.map_len - size);
    } else {
        nb.kind = BLOCK_HEAP;
        nb.base = (uintptr_t)aligned_alloc(HOST_DEVICE_ALIGN, (size + HOST_DEVICE_ALIGN - 1) & ~(size_t)(HOST_DEVICE_ALIGN - 1));
    }
    if (!nb.base) {
        pthread_rwlock_unlock(&g_blocks_lock);
        return acl_host_error(ACL_ERROR_RT_MEMORY_ALLOCATION, "%s: cannot allocate %zu bytes", api, size);
    }
    if (insert_block(&nb) != 0) {
        if (nb.kind == BLOCK_MAPPED) pool_put(nb.base, nb.map_len, nb.pages);
        else free((void *)nb.base);
        pthread_rwlock_unlock(&g_blocks_lock);
        return acl_host_error(ACL_ERROR_RT_MEMORY_ALLOCATION, "%s: out of memory", api);
    }
    pthread_rwlock_unlock(&g_blocks_lock);
    *devPtr = (void *)nb.base;
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

/* removes the block starting at ptr of the wanted kind class; returns ACL_SUCCESS or an error already recorded */
static aclError remove_block(const char *api, void *ptr, int registered, block *out)
{
    pthread_rwlock_wrlock(&g_blocks_lock);
    size_t i = upper_bound((uintptr_t)ptr);
    block *b = i > 0 && g_blocks[i - 1].base == (uintptr_t)ptr ? &g_blocks[i - 1] : NULL;
    aclError e = ACL_SUCCESS;
    if (!b || (b->kind == BLOCK_REGISTERED) != registered) {
        if (registered)
            e = acl_host_error(ACL_ERROR_HOST_MEMORY_NOT_REGISTERED,
                               "%s: %p is not the start of a range registered with aclrtHostRegister", api, ptr);
        else if (b)
            e = acl_host_error(ACL_ERROR_INVALID_PARAM,
                               "%s: %p was registered with aclrtHostRegister; release it with aclrtHostUnregister",
                               api, ptr);
        else
            e = acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: %p is not the start of a live aclrtMalloc block", api,
                               ptr);
    } else if (atomic_load(&b->pins) > 0) {
        e = acl_host_error(ACL_ERROR_RT_MEMORY_FREE,
                           "%s: %p is in use by a kernel or copy running on another thread; release it after "
                           "synchronizing the stream", api, ptr);
    } else {
        *out = *b;
        memmove(&g_blocks[i - 1], &g_blocks[i], (g_nblocks - i) * sizeof(block));
        g_nblocks--;
        if (out->kind == BLOCK_MAPPED) pool_put(out->base, out->map_len, out->pages);
    }
    pthread_rwlock_unlock(&g_blocks_lock);
    return e;
}

aclError aclrtFree(void *devPtr)
{
    if (!devPtr) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtFree: devPtr must not be NULL");
    block b;
    aclError e = remove_block("aclrtFree", devPtr, 0, &b);
    if (e) return e;
    if (b.kind == BLOCK_HEAP) free(devPtr);
    return ACL_SUCCESS;
}

/* ---- host memory registration (CANN 8.1 acl_rt.h): on the host runtime the device address is the host
 * address, and the registered range counts as device memory for every range check until unregistered. ---- */
aclError aclrtHostRegister(void *ptr, uint64_t size, aclrtHostRegisterType type, void **devPtr)
{
    if (!ptr || !devPtr)
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtHostRegister: ptr and devPtr must not be NULL");
    if (size == 0) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtHostRegister: size must be greater than 0");
    if (type != ACL_HOST_REGISTER_MAPPED)
        return acl_host_error(ACL_ERROR_INVALID_PARAM,
                              "aclrtHostRegister: type %d is not supported (ACL_HOST_REGISTER_MAPPED = 0)", (int)type);
    if (size > UINTPTR_MAX - (uintptr_t)ptr)
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtHostRegister: [%p, +%llu) wraps the address space", ptr,
                              (unsigned long long)size);
    if (!acl_host_runtime_ready())
        return acl_host_error(ACL_ERROR_RT_CONTEXT_NULL, "aclrtHostRegister: no device is set on this thread");
    uintptr_t p = (uintptr_t)ptr;
    pthread_rwlock_wrlock(&g_blocks_lock);
    size_t i = upper_bound(p);
    const block *prev = i > 0 ? &g_blocks[i - 1] : NULL, *next = i < g_nblocks ? &g_blocks[i] : NULL;
    const block *clash = prev && prev->base + prev->size > p ? prev : next && next->base < p + size ? next : NULL;
    aclError e = ACL_SUCCESS;
    if (clash) {
        e = acl_host_error(ACL_ERROR_HOST_MEMORY_ALREADY_REGISTERED,
                           "aclrtHostRegister: [%p, +%llu) overlaps %s [%p, +%zu)", ptr, (unsigned long long)size,
                           clash->kind == BLOCK_REGISTERED ? "a registered range" : "an aclrtMalloc block",
                           (void *)clash->base, clash->size);
    } else {
        block nb;
        memset(&nb, 0, sizeof nb);
        nb.base = p;
        nb.size = (size_t)size;
        nb.kind = BLOCK_REGISTERED;
        if (insert_block(&nb) != 0) e = acl_host_error(ACL_ERROR_BAD_ALLOC, "aclrtHostRegister: out of memory");
    }
    pthread_rwlock_unlock(&g_blocks_lock);
    if (e) return e;
    *devPtr = ptr;
    return ACL_SUCCESS;
}

aclError aclrtHostUnregister(void *ptr)
{
    if (!ptr) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtHostUnregister: ptr must not be NULL");
    block b;
    return remove_block("aclrtHostUnregister", ptr, 1, &b);
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

/* Checks a copy and pins its device side(s); *pins says which to unpin (1: dst, 2: src). */
static aclError check_copy(const char *api, void *dst, size_t destMax, const void *src, size_t count,
                           aclrtMemcpyKind kind, int *pins)
{
    *pins = 0;
    if (!dst || !src) return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: dst and src must not be NULL", api);
    if (count > destMax)
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: count (%zu) exceeds destMax (%zu)", api, count, destMax);
    int dst_dev, src_dev;
    /* CANN translates only these six kinds (runtime memory.cpp); INNER/INTER_DEVICE_TO_DEVICE (6, 7) and
     * anything else are ACL_ERROR_INVALID_PARAM */
    switch (kind) {
    case ACL_MEMCPY_HOST_TO_HOST: dst_dev = 0; src_dev = 0; break;
    case ACL_MEMCPY_HOST_TO_DEVICE: case ACL_MEMCPY_HOST_TO_BUF_TO_DEVICE: dst_dev = 1; src_dev = 0; break;
    case ACL_MEMCPY_DEVICE_TO_HOST: dst_dev = 0; src_dev = 1; break;
    case ACL_MEMCPY_DEVICE_TO_DEVICE: dst_dev = 1; src_dev = 1; break;
    case ACL_MEMCPY_DEFAULT:
        /* the runtime infers the direction from where each address starts: an address inside a device block is
         * device memory, so a count that runs past that block's end is refused below instead of being copied
         * as host memory (a heap overflow; issue 12 fuzzing, native/fuzz/repro/memcpy_default.c) */
        dst_dev = acl_host_is_device_range(dst, 1);
        src_dev = acl_host_is_device_range(src, 1);
        break;
    default: return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: unknown memcpy kind %d", api, (int)kind);
    }
    if (dst_dev && !acl_host_device_pin(dst, count))
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: dst [%p, +%zu) is not inside device memory from aclrtMalloc",
                              api, dst, count);
    if (dst_dev) *pins |= 1;
    if (src_dev && !acl_host_device_pin(src, count)) {
        if (dst_dev) acl_host_device_unpin(dst);
        *pins = 0;
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: src [%p, +%zu) is not inside device memory from aclrtMalloc",
                              api, src, count);
    }
    if (src_dev) *pins |= 2;
    return ACL_SUCCESS;
}

static void unpin_copy(void *dst, const void *src, int pins)
{
    if (pins & 1) acl_host_device_unpin(dst);
    if (pins & 2) acl_host_device_unpin(src);
}

aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count, aclrtMemcpyKind kind)
{
    if (count == 0) return ACL_SUCCESS;
    int pins;
    aclError e = check_copy("aclrtMemcpy", dst, destMax, src, count, kind, &pins);
    if (e) return e;
    memmove(dst, src, count);
    unpin_copy(dst, src, pins);
    return ACL_SUCCESS;
}

aclError aclrtMemcpyAsync(void *dst, size_t destMax, const void *src, size_t count, aclrtMemcpyKind kind,
                          aclrtStream stream)
{
    if (count == 0) return ACL_SUCCESS;
    int pins;
    aclError e = check_copy("aclrtMemcpyAsync", dst, destMax, src, count, kind, &pins);
    if (e) return e;
    if ((e = acl_host_stream_acquire(stream)) == ACL_SUCCESS) {
        memmove(dst, src, count);
        acl_host_stream_release(stream);
    }
    unpin_copy(dst, src, pins);
    return e;
}

static aclError do_memset(const char *api, void *devPtr, size_t maxCount, int32_t value, size_t count,
                          aclrtStream stream, int async)
{
    if (!devPtr) return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: devPtr must not be NULL", api);
    if (count > maxCount)
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: count (%zu) exceeds maxCount (%zu)", api, count, maxCount);
    if (count == 0) return ACL_SUCCESS;
    if (!acl_host_device_pin(devPtr, count))
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "%s: [%p, +%zu) is not inside device memory from aclrtMalloc",
                              api, devPtr, count);
    aclError e = ACL_SUCCESS;
    if (async && (e = acl_host_stream_acquire(stream)) != ACL_SUCCESS) {
        acl_host_device_unpin(devPtr);
        return e;
    }
    memset(devPtr, value, count);
    if (async) acl_host_stream_release(stream);
    acl_host_device_unpin(devPtr);
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

/* ---- fork(): the table is consistent in the child (the write lock is held across fork), and pins of kernels
 * that were running in other threads, which do not exist in the child, are dropped. ---- */
void host_memory_atfork_prepare(void)
{
    host_ptrset_lock(&g_host_allocs);
    pthread_rwlock_wrlock(&g_blocks_lock);
}

void host_memory_atfork_parent(void)
{
    pthread_rwlock_unlock(&g_blocks_lock);
    host_ptrset_unlock(&g_host_allocs);
}

void host_memory_atfork_child(void)
{
    for (size_t i = 0; i < g_nblocks; i++) atomic_store(&g_blocks[i].pins, 0);
    /* a fresh lock, not an unlock: glibc tells a writer's unlock by its thread id, which differs in the child */
    pthread_rwlock_init(&g_blocks_lock, NULL);
    host_ptrset_unlock(&g_host_allocs);
}
