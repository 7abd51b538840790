/* Failing-malloc LD_PRELOAD shim (issue 12, allocation failures): makes the Nth allocation *made by the host
 * runtime's libraries* (libascendcl, libnnopbase, libopapi: the caller's return address lies in one of them)
 * return NULL, once, after failing_malloc_arm(N). Allocations of anything else (Python, numpy, libc) are never
 * failed, so a crash can only come from the runtime's handling of its own failed allocation.
 *
 *   cc -shared -fPIC -O1 -o libfailing_malloc.so failing_malloc.c -ldl
 *   LD_PRELOAD=./libfailing_malloc.so program   (the program calls failing_malloc_arm / failing_malloc_state
 *                                                through dlsym or ctypes)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MAX_RANGES 64

static struct {
    uintptr_t lo, hi;
} ranges[MAX_RANGES];
static int nranges;
static atomic_long countdown;  /* > 0: armed; the allocation taking it to 0 fails */
static atomic_long counted;    /* runtime allocations seen since arming */
static atomic_int fired;
static void *_Atomic failed_caller;

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);

/* dlsym may itself call calloc: serve that from a static block while the real functions are being found */
static char boot[4096];
static size_t boot_used;
static int resolving;

static void resolve(void)
{
    if (real_malloc || resolving) return;
    resolving = 1;
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
    real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    resolving = 0;
}

static int is_runtime_object(const char *name)
{
    return strstr(name, "libascendcl") || strstr(name, "libnnopbase") || strstr(name, "libopapi");
}

static int collect(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size, (void)data;
    if (!info->dlpi_name || !is_runtime_object(info->dlpi_name)) return 0;
    for (int i = 0; i < info->dlpi_phnum && nranges < MAX_RANGES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            ranges[nranges].lo = info->dlpi_addr + ph->p_vaddr;
            ranges[nranges].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
            nranges++;
        }
    }
    return 0;
}

/* Arm: the nth runtime allocation from now fails (n <= 0 disarms). Returns the number of code ranges of the
 * runtime's libraries found (0: they are not loaded yet, nothing would fail). */
int failing_malloc_arm(long n)
{
    resolve();
    nranges = 0;
    dl_iterate_phdr(collect, NULL);
    atomic_store(&fired, 0);
    atomic_store(&counted, 0);
    atomic_store(&countdown, n > 0 ? n : 0);
    return nranges;
}

/* After a run: 1 if the armed allocation failed, with *seen = runtime allocations counted since arming. */
int failing_malloc_state(long *seen)
{
    if (seen) *seen = atomic_load(&counted);
    return atomic_load(&fired);
}

/* The return address of the allocation that was failed (to name the site: addr2line / dladdr). */
void *failing_malloc_site(void)
{
    return atomic_load(&failed_caller);
}

static int should_fail(void *caller)
{
    if (atomic_load_explicit(&countdown, memory_order_relaxed) <= 0) return 0;
    uintptr_t a = (uintptr_t)caller;
    int mine = 0;
    for (int i = 0; i < nranges; i++)
        if (a >= ranges[i].lo && a < ranges[i].hi) mine = 1;
    if (!mine) return 0;
    atomic_fetch_add(&counted, 1);
    if (atomic_fetch_sub(&countdown, 1) == 1) {
        atomic_store(&failed_caller, caller);
        atomic_store(&fired, 1);
        return 1;
    }
    return 0;
}

void *malloc(size_t n)
{
    resolve();
    if (!real_malloc) return NULL;
    if (should_fail(__builtin_return_address(0))) return NULL;
    return real_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    resolve();
    if (!real_calloc) { /* during dlsym: a zeroed static block (never freed: free() ignores it) */
        size_t want = (n * m + 15) & ~(size_t)15;
        if (boot_used + want > sizeof boot) return NULL;
        void *p = boot + boot_used;
        boot_used += want;
        return p;
    }
    if (should_fail(__builtin_return_address(0))) return NULL;
    return real_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    resolve();
    if (should_fail(__builtin_return_address(0))) return NULL;
    return real_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    resolve();
    if (should_fail(__builtin_return_address(0))) return 12; /* ENOMEM */
    return real_posix_memalign(out, align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    resolve();
    if (should_fail(__builtin_return_address(0))) return NULL;
    return real_aligned_alloc(align, n);
}

void free(void *p)
{
    static void (*real_free)(void *);
    if ((char *)p >= boot && (char *)p < boot + sizeof boot) return;
    if (!real_free) real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    real_free(p);
}
