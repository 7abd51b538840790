/*
 * The kernels' thread pool: persistent workers that spin briefly, then sleep, between jobs (a warm fork/join
 * costs about a microsecond, a cold pthread_create tens of them; see spec/perf.md 4.3). Chunks are handed out
 * dynamically through an atomic counter and the calling thread works too. A call made while the pool is busy
 * (another thread's kernel, or a nested call) runs serially in its caller rather than waiting.
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
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include "host_internal.h"

#define HOST_MAX_THREADS 256
#define HOST_SPIN_ITERS 20000

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
static __thread int tls_in_pool;

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
        long gen;
        int spins = 0;
        while ((gen = atomic_load(&g_generation)) == seen && spins < HOST_SPIN_ITERS) spins++;
        if (gen == seen) {
            pthread_mutex_lock(&g_lock);
            while ((gen = atomic_load(&g_generation)) == seen) pthread_cond_wait(&g_wake, &g_lock);
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
    pthread_mutex_lock(&g_lock);
    atomic_fetch_add(&g_generation, 1);
    pthread_cond_broadcast(&g_wake);
    pthread_mutex_unlock(&g_lock);
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
    pthread_mutex_unlock(&g_busy);
}
