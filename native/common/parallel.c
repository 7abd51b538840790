/*
 * The kernels' thread pool: persistent workers that spin briefly, then sleep, between jobs (a warm fork/join
 * costs about a microsecond, a cold pthread_create tens of them; see spec/perf.md 4.3). Chunks are handed out
 * dynamically through an atomic counter and the calling thread works too. A call made while the pool is busy
 * (another thread's kernel, or a nested call) runs serially in its caller rather than waiting.
 *
 * Idle workers spin for ACLNN_MOE_SPIN_US (default 200) before they sleep, and a job is broadcast only to
 * sleeping workers (g_sleepers), so back-to-back calls cost no futex call on either side.
 *
 * The caller waits only for the workers that joined the job: a sleeping worker takes tens of microseconds to
 * wake on a loaded or virtualised machine, and when the caller has already run every chunk itself it must not
 * wait for that wake-up. Joining is a reference count (g_refs, the caller holds one while the job is open):
 * a worker joins only while it is non-zero, and the job is closed when it drops to zero.
 *
 * fork(): the prepare handler waits for the running job (it takes g_busy) and holds the pool's locks across the
 * fork; in the child, which has no workers, the pool is reset and starts new workers on its next job.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include "host_internal.h"

#define HOST_MAX_THREADS 256
#define HOST_SPIN_ITERS 20000
/* How long an idle worker keeps spinning before it sleeps (ACLNN_MOE_SPIN_US). A caller calling kernels back to
 * back from Python has tens of microseconds of its own work between them: a worker that slept in that gap costs a
 * futex wake-up plus, on a virtual machine, the vCPU's wake-up (seen here: 30-60 us, the kernel itself at T=16
 * takes 30), so it spins through such gaps; OpenMP runtimes spin far longer by default. */
#define HOST_SPIN_US_DEFAULT 200

static pthread_mutex_t g_init_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_started; /* workers running (reset in a forked child) */
static int g_nthreads = 1;
static pthread_mutex_t g_busy = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_done = PTHREAD_COND_INITIALIZER;

static struct {
    acl_host_range_fn fn;
    void *ctx;
    int64_t n, chunk, nchunks;
} g_job;
static atomic_long g_generation;
static atomic_long g_next_chunk;
static atomic_int g_refs; /* the caller (until it has run out of chunks) + the workers inside the job; 0: closed */
static atomic_int g_sleepers; /* workers in (or entering) pthread_cond_wait: a job is broadcast only when > 0 */
static int64_t g_spin_ns;
static atomic_int g_caller_cpu = -1; /* the CPU the last job's caller ran on when the job ended */
static __thread int tls_in_pool;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* spins until the generation moves on or the spin budget is spent; returns the generation seen last */
static long spin_for_job(long seen)
{
    long gen = atomic_load(&g_generation);
    if (gen != seen || g_spin_ns <= 0) return gen;
    const int64_t until = now_ns() + g_spin_ns;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            gen = atomic_load(&g_generation);
            if (gen != seen) return gen;
            cpu_relax();
        }
        if (now_ns() >= until) return gen;
        /* spinning on the CPU the caller last ran on would only keep the caller (back in Python, or in a serial
         * phase) from that CPU until a time slice ends: with more threads than cores (torch's OpenMP workers
         * spinning too) calls had taken 4-6x as long; sleep instead, the next job wakes this worker */
        if (sched_getcpu() == atomic_load_explicit(&g_caller_cpu, memory_order_relaxed)) return gen;
    }
}

static void run_chunks(void)
{
    for (;;) {
        long c = atomic_fetch_add(&g_next_chunk, 1);
        if (c >= g_job.nchunks) break;
        int64_t b = c * g_job.chunk, e = b + g_job.chunk;
        if (e > g_job.n) e = g_job.n;
        g_job.fn(g_job.ctx, b, e);
    }
}

static void *worker(void *arg)
{
    (void)arg;
    tls_in_pool = 1;
    long seen = 0;
    for (;;) {
        long gen = spin_for_job(seen);
        if (gen == seen) {
            pthread_mutex_lock(&g_lock);
            atomic_fetch_add(&g_sleepers, 1); /* before the re-check: a caller that missed it sees the new job */
            while ((gen = atomic_load(&g_generation)) == seen) pthread_cond_wait(&g_wake, &g_lock);
            atomic_fetch_sub(&g_sleepers, 1);
            pthread_mutex_unlock(&g_lock);
        }
        seen = gen;
        /* join the open job, if any (a late worker may join a newer one than it was woken for: it just helps) */
        int r = atomic_load(&g_refs);
        while (r > 0 && !atomic_compare_exchange_weak(&g_refs, &r, r + 1)) {
        }
        if (r <= 0) continue; /* closed: the caller ran every chunk */
        run_chunks();
        if (atomic_fetch_sub(&g_refs, 1) == 1) {
            pthread_mutex_lock(&g_lock);
            pthread_cond_signal(&g_done);
            pthread_mutex_unlock(&g_lock);
        }
    }
    return NULL;
}

static void pool_start(void)
{
    const char *env = getenv("ACLNN_MOE_NUM_THREADS");
    int n = env ? atoi(env) : 0;
    if (n <= 0) {
        cpu_set_t set;
        n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    }
    if (n < 1) n = 1;
    if (n > HOST_MAX_THREADS) n = HOST_MAX_THREADS;
    const char *spin = getenv("ACLNN_MOE_SPIN_US");
    long us = spin && *spin ? atol(spin) : HOST_SPIN_US_DEFAULT;
    if (us < 0) us = 0;
    if (us > 1000000) us = 1000000;
    g_spin_ns = (int64_t)us * 1000;
    int started = 1;
    for (int i = 1; i < n; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, worker, NULL) == 0) started++;
        pthread_attr_destroy(&attr);
    }
    g_nthreads = started;
}

int acl_host_num_threads(void)
{
    if (!atomic_load(&g_started)) {
        pthread_mutex_lock(&g_init_lock);
        if (!atomic_load(&g_started)) {
            pool_start();
            atomic_store(&g_started, 1);
        }
        pthread_mutex_unlock(&g_init_lock);
    }
    return g_nthreads;
}

static void atfork_prepare(void)
{
    pthread_mutex_lock(&g_init_lock);
    pthread_mutex_lock(&g_busy);
    pthread_mutex_lock(&g_lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&g_lock);
    pthread_mutex_unlock(&g_busy);
    pthread_mutex_unlock(&g_init_lock);
}

static void atfork_child(void)
{
    /* the workers are not in the child: start new ones on the next job (no job is open: g_busy was held) */
    pthread_cond_init(&g_wake, NULL);
    pthread_cond_init(&g_done, NULL);
    atomic_store(&g_refs, 0);
    atomic_store(&g_sleepers, 0);
    g_nthreads = 1;
    atomic_store(&g_started, 0);
    pthread_mutex_unlock(&g_lock);
    pthread_mutex_unlock(&g_busy);
    pthread_mutex_unlock(&g_init_lock);
}

__attribute__((constructor)) static void register_atfork(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

void acl_host_parallel_for(int64_t n, int64_t grain, acl_host_range_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int nt = acl_host_num_threads();
    /* parallel only when every chunk gets a whole grain (the least work worth a hand-off): a call of less than two
     * grains runs in the caller, which is faster than waking a worker on a loaded or virtualised machine */
    if (nt == 1 || n / 2 < grain || tls_in_pool || pthread_mutex_trylock(&g_busy) != 0) {
        fn(ctx, 0, n);
        return;
    }
    /* up to sixteen chunks per thread (each at least `grain`): on a shared or virtualised machine a thread is
     * often descheduled for a few ms in the middle of a job, and the others can then take over all but the chunk
     * it holds (with four per thread, a quarter of its share was left waiting); a hand-off is one atomic add */
    int64_t nchunks = n / grain;
    if (nchunks > (int64_t)nt * 16) nchunks = (int64_t)nt * 16;
    int64_t chunk = (n + nchunks - 1) / nchunks;
    g_job.fn = fn;
    g_job.ctx = ctx;
    g_job.n = n;
    g_job.chunk = chunk;
    g_job.nchunks = (n + chunk - 1) / chunk;
    atomic_store(&g_next_chunk, 0);
    atomic_store(&g_refs, 1);
    atomic_fetch_add(&g_generation, 1);
    /* (seq_cst with the worker's g_sleepers increment and re-check: either it sees the new generation or this
     * load sees it asleep; spinning workers need no broadcast, and the lock stays off the hot path) */
    if (atomic_load(&g_sleepers) > 0) {
        pthread_mutex_lock(&g_lock);
        pthread_cond_broadcast(&g_wake);
        pthread_mutex_unlock(&g_lock);
    }
    tls_in_pool = 1;
    run_chunks();
    tls_in_pool = 0;
    /* drop the caller's reference; wait until the workers that joined have left before g_job may be reused */
    if (atomic_fetch_sub(&g_refs, 1) != 1) {
        int spins = 0;
        while (atomic_load(&g_refs) > 0 && spins < HOST_SPIN_ITERS) spins++;
        if (atomic_load(&g_refs) > 0) {
            pthread_mutex_lock(&g_lock);
            while (atomic_load(&g_refs) > 0) pthread_cond_wait(&g_done, &g_lock);
            pthread_mutex_unlock(&g_lock);
        }
    }
    atomic_store_explicit(&g_caller_cpu, sched_getcpu(), memory_order_relaxed);
    pthread_mutex_unlock(&g_busy);
}
