/* Threads (issue 12 item 9, and aclFinalize under load): 8 threads on their own streams and on one shared stream
 * give byte-identical results to one thread; a stream destroyed while other threads use it ends their calls with
 * status codes (ACL_ERROR_INVALID_RESOURCE_HANDLE 200005 for runtime calls, 361001 for operators), never a
 * use-after-free or a hang; aclFinalize while threads run operators returns 0 and their later calls return
 * 361001 / 107002 until aclInit. Built as is and with -fsanitize=thread (TSan must report nothing). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "acl/acl.h"
#include "aclnn/acl_meta.h"
#include "aclnnop/aclnn_moe_gating_top_k.h"

#define NT 8
#define T 96
#define E 32
#define K 6
#define ITERS 12

static atomic_int failures;
#define EXPECT(cond)                                                                   \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: FAILED %s\n", __FILE__, __LINE__, #cond);          \
            atomic_fetch_add(&failures, 1);                                            \
        }                                                                              \
    } while (0)

static float g_x[T * E];

typedef struct {
    float y[T * K];
    int32_t idx[T * K];
} result;

/* one full gating call on `stream`: upload, two phases, download; returns the phase-2 status */
static int gating(aclrtStream stream, result *r)
{
    void *x = NULL, *y = NULL, *idx = NULL, *out = NULL, *ws = NULL;
    int st = -1;
    if (aclrtMalloc(&x, sizeof g_x, ACL_MEM_MALLOC_HUGE_FIRST) || aclrtMalloc(&y, sizeof r->y, ACL_MEM_MALLOC_HUGE_FIRST) ||
        aclrtMalloc(&idx, sizeof r->idx, ACL_MEM_MALLOC_HUGE_FIRST) ||
        aclrtMalloc(&out, sizeof g_x, ACL_MEM_MALLOC_HUGE_FIRST))
        goto done;
    aclrtMemcpy(x, sizeof g_x, g_x, sizeof g_x, ACL_MEMCPY_HOST_TO_DEVICE);
    int64_t xd[2] = {T, E}, yd[2] = {T, K};
    aclTensor *xt = aclCreateTensor(xd, 2, ACL_FLOAT, NULL, 0, ACL_FORMAT_ND, xd, 2, x);
    aclTensor *yt = aclCreateTensor(yd, 2, ACL_FLOAT, NULL, 0, ACL_FORMAT_ND, yd, 2, y);
    aclTensor *it = aclCreateTensor(yd, 2, ACL_INT32, NULL, 0, ACL_FORMAT_ND, yd, 2, idx);
    aclTensor *ot = aclCreateTensor(xd, 2, ACL_FLOAT, NULL, 0, ACL_FORMAT_ND, xd, 2, out);
    uint64_t wsn = 0;
    aclOpExecutor *ex = NULL;
    st = aclnnMoeGatingTopKGetWorkspaceSize(xt, NULL, K, 1, 1, 0, 0, 0, true, 1.0, 1e-20, yt, it, ot, &wsn, &ex);
    if (st == 0 && wsn && aclrtMalloc(&ws, wsn, ACL_MEM_MALLOC_HUGE_FIRST)) st = -1;
    if (st == 0) st = aclnnMoeGatingTopK(ws, wsn, ex, stream);
    if (st == 0 && aclrtSynchronizeStream(stream) != 0) st = -2;
    if (st == 0) {
        aclrtMemcpy(r->y, sizeof r->y, y, sizeof r->y, ACL_MEMCPY_DEVICE_TO_HOST);
        aclrtMemcpy(r->idx, sizeof r->idx, idx, sizeof r->idx, ACL_MEMCPY_DEVICE_TO_HOST);
    }
    aclDestroyTensor(xt);
    aclDestroyTensor(yt);
    aclDestroyTensor(it);
    aclDestroyTensor(ot);
done:
    if (ws) aclrtFree(ws);
    void *b[] = {x, y, idx, out};
    for (int i = 0; i < 4; i++)
        if (b[i]) aclrtFree(b[i]);
    return st;
}

static result g_ref;
static aclrtStream g_shared;
static result g_first[NT]; /* each thread's first result (cold start: nothing initialised before them) */
static atomic_int g_next_slot;

typedef struct {
    int own_stream;
    int cold; /* the first run of the process: g_ref is not known yet */
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = (worker_arg *)p;
    EXPECT(aclrtSetDevice(0) == 0);
    aclrtStream s = g_shared;
    if (a->own_stream) EXPECT(aclrtCreateStream(&s) == 0);
    result r;
    for (int i = 0; i < ITERS; i++) {
        memset(&r, 0xff, sizeof r);
        EXPECT(gating(s, &r) == 0);
        EXPECT(memcmp(&r, &g_ref, sizeof r) == 0);
    }
    if (a->own_stream) EXPECT(aclrtDestroyStream(s) == 0);
    return NULL;
}

static void *worker_cold(worker_arg *a)
{
    EXPECT(aclrtSetDevice(0) == 0);
    aclrtStream s;
    EXPECT(aclrtCreateStream(&s) == 0);
    result r;
    EXPECT(gating(s, &r) == 0);
    g_first[atomic_fetch_add(&g_next_slot, 1)] = r;
    EXPECT(aclrtDestroyStream(s) == 0);
    (void)a;
    return NULL;
}

static void run_workers(int own, int cold)
{
    pthread_t th[NT];
    worker_arg a = {own, cold};
    for (int i = 0; i < NT; i++) pthread_create(&th[i], NULL, worker, &a);
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
}

/* ---- a stream destroyed under use ---- */
static aclrtStream g_victim;
static atomic_int g_started, g_bad_status;

static void *user(void *p)
{
    (void)p;
    aclrtSetDevice(0);
    void *buf = NULL;
    size_t n = 4 << 20;
    if (aclrtMalloc(&buf, n, ACL_MEM_MALLOC_HUGE_FIRST) != 0) return NULL;
    atomic_fetch_add(&g_started, 1);
    for (int i = 0; i < 2000; i++) {
        int st = aclrtMemsetAsync(buf, n, i & 0xff, n, g_victim);
        if (st == ACL_ERROR_INVALID_RESOURCE_HANDLE) break; /* destroyed: a status, not a crash */
        if (st != 0) atomic_fetch_add(&g_bad_status, 1);
        result r;
        st = gating(g_victim, &r);
        if (st == ACLNN_ERR_RUNTIME_ERROR || st == -2) break;
        if (st != 0) atomic_fetch_add(&g_bad_status, 1);
    }
    aclrtFree(buf);
    return NULL;
}

static void destroy_under_use(void)
{
    EXPECT(aclrtCreateStream(&g_victim) == 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, user, NULL);
    while (atomic_load(&g_started) < 4) sched_yield();
    EXPECT(aclrtDestroyStream(g_victim) == 0); /* waits for the task running on it */
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    EXPECT(atomic_load(&g_bad_status) == 0);
    EXPECT(aclrtDestroyStream(g_victim) == ACL_ERROR_INVALID_RESOURCE_HANDLE);
}

/* ---- aclFinalize while threads run operators ---- */
static atomic_int g_stop, g_after_final;

static void *looper(void *p)
{
    (void)p;
    aclrtSetDevice(0);
    aclrtStream s;
    if (aclrtCreateStream(&s) != 0) return NULL;
    while (!atomic_load(&g_stop)) {
        result r;
        int st = gating(s, &r);
        /* 0 before aclFinalize; after it an allocation says 107002 (gating -> -1) or phase 2 says 361001 */
        if (st != 0 && st != -1 && st != ACLNN_ERR_RUNTIME_ERROR) atomic_fetch_add(&g_bad_status, 1);
        if (st != 0) atomic_fetch_add(&g_after_final, 1);
    }
    aclrtDestroyStream(s);
    return NULL;
}

static void finalize_under_load(void)
{
    pthread_t th[4];
    atomic_store(&g_bad_status, 0);
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, looper, NULL);
    struct timespec d = {0, 20 * 1000 * 1000};
    nanosleep(&d, NULL);
    EXPECT(aclFinalize() == 0);
    while (atomic_load(&g_after_final) < 4) sched_yield();
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    EXPECT(atomic_load(&g_bad_status) == 0);
    EXPECT(aclInit(NULL) == 0 && aclrtSetDevice(0) == 0);
    result r;
    EXPECT(gating(NULL, &r) == 0 && memcmp(&r, &g_ref, sizeof r) == 0); /* works again after aclInit */
}

int main(void)
{
    for (int i = 0; i < T * E; i++) g_x[i] = (float)((i * 7919) % 1009) / 97.0f - 5.0f;
    if (aclInit(NULL) != 0 || aclrtSetDevice(0) != 0) return 2;
    /* cold start: 8 threads make the first operator calls of the process together (thread pool start-up, CPU
     * feature detection, allocator); only their first results are kept, then compared with one thread's */
    g_shared = NULL;
    worker_arg cold = {0, 1};
    pthread_t th[NT];
    for (int i = 0; i < NT; i++) pthread_create(&th[i], NULL, (void *(*)(void *))worker_cold, &cold);
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
    EXPECT(gating(NULL, &g_ref) == 0);
    for (int i = 0; i < NT; i++) EXPECT(memcmp(&g_first[i], &g_ref, sizeof g_ref) == 0);
    run_workers(1, 0);
    EXPECT(aclrtCreateStream(&g_shared) == 0);
    run_workers(0, 0);
    EXPECT(aclrtDestroyStream(g_shared) == 0);
    destroy_under_use();
    finalize_under_load();
    aclFinalize();
    if (atomic_load(&failures)) return 1;
    printf("OK\n");
    return 0;
}
