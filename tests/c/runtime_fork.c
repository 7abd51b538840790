/* fork() while other threads run operators (issue 12 item 10). The runtime's pthread_atfork handlers wait for the
 * tasks running on every stream and for the kernel thread pool's current job, and hold the runtime's locks across
 * the fork, so the child starts with a consistent runtime: the parent's initialisation, memory and streams, every
 * stream idle, a fresh thread pool. The child may keep using the runtime (shown below: an operator on a stream
 * the parent's threads were using) or aclFinalize / aclInit it again. A child that deadlocks is killed by its
 * alarm and fails the test.
 *
 * Under AddressSanitizer the busy threads pause across each fork (g_gate): libsanitizer before LLVM 17 (GCC 12's
 * libasan) does not lock its allocator around fork, so a child forked while another thread refilled its malloc
 * cache waits forever on that lock in its first malloc (seen in CI: the child stuck in SizeClassAllocator64::
 * GetFromAllocator). The test without ASan forks into running operators. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "acl/acl.h"
#include "aclnn/acl_meta.h"
#include "aclnnop/aclnn_moe_compute_expert_tokens.h"

#define ROWS 200000
#define EXPERTS 64

static atomic_int g_stop;
static aclrtStream g_stream;
static int32_t g_host[ROWS];
static pthread_rwlock_t g_gate; /* under ASan: read-held by a busy thread's call, write-held across a fork */
static int g_asan;

/* one ComputeExpertTokens call; 0 when the result is right */
static int cet(aclrtStream stream)
{
    void *src = NULL, *out = NULL, *ws = NULL;
    int bad = 1;
    if (aclrtMalloc(&src, sizeof g_host, ACL_MEM_MALLOC_HUGE_FIRST) ||
        aclrtMalloc(&out, EXPERTS * 4, ACL_MEM_MALLOC_HUGE_FIRST))
        goto done;
    aclrtMemcpy(src, sizeof g_host, g_host, sizeof g_host, ACL_MEMCPY_HOST_TO_DEVICE);
    int64_t n = ROWS, e = EXPERTS;
    aclTensor *st = aclCreateTensor(&n, 1, ACL_INT32, NULL, 0, ACL_FORMAT_ND, &n, 1, src);
    aclTensor *ot = aclCreateTensor(&e, 1, ACL_INT32, NULL, 0, ACL_FORMAT_ND, &e, 1, out);
    uint64_t wsn = 0;
    aclOpExecutor *ex = NULL;
    int s = aclnnMoeComputeExpertTokensGetWorkspaceSize(st, EXPERTS, ot, &wsn, &ex);
    if (s == 0 && wsn && aclrtMalloc(&ws, wsn, ACL_MEM_MALLOC_HUGE_FIRST)) s = -1;
    if (s == 0) s = aclnnMoeComputeExpertTokens(ws, wsn, ex, stream);
    if (s == 0 && aclrtSynchronizeStream(stream) == 0) {
        int32_t res[EXPERTS];
        aclrtMemcpy(res, sizeof res, out, sizeof res, ACL_MEMCPY_DEVICE_TO_HOST);
        bad = res[EXPERTS - 1] != ROWS || res[0] != ROWS / EXPERTS;
    }
    aclDestroyTensor(st);
    aclDestroyTensor(ot);
done:
    if (ws) aclrtFree(ws);
    if (src) aclrtFree(src);
    if (out) aclrtFree(out);
    return bad;
}

static void *busy(void *p)
{
    (void)p;
    aclrtSetDevice(0);
    while (!atomic_load(&g_stop)) {
        if (g_asan) pthread_rwlock_rdlock(&g_gate);
        int bad = cet(g_stream);
        if (g_asan) pthread_rwlock_unlock(&g_gate);
        if (bad) {
            fprintf(stderr, "parent thread: wrong result\n");
            exit(3);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    for (int i = 0; i < ROWS; i++) g_host[i] = i / (ROWS / EXPERTS);
    g_asan = dlsym(RTLD_DEFAULT, "__asan_init") != NULL;
    pthread_rwlockattr_t attr; /* a waiting fork goes before new calls */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&g_gate, &attr);
    if (aclInit(NULL) || aclrtSetDevice(0) || aclrtCreateStream(&g_stream)) return 2;
    pthread_t th[3];
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, busy, NULL);
    int failed = 0;
    for (int r = 0; r < rounds; r++) {
        usleep(2000);
        if (g_asan) pthread_rwlock_wrlock(&g_gate);
        pid_t pid = fork();
        if (g_asan && pid != 0) pthread_rwlock_unlock(&g_gate); /* (the child never touches the gate) */
        if (pid == 0) {
            alarm(20); /* a deadlocked child dies of SIGALRM */
            int bad = cet(g_stream) | cet(NULL);
            aclrtStream s;
            bad |= aclrtCreateStream(&s) != 0 || cet(s) || aclrtDestroyStream(s) != 0;
            bad |= aclFinalize() != 0 || aclInit(NULL) != 0 || aclrtSetDevice(0) != 0 || cet(NULL);
            _exit(bad ? 4 : 0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "round %d: child %s %d\n", r, WIFSIGNALED(status) ? "killed by signal" : "exited with",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            failed++;
        }
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    aclrtDestroyStream(g_stream);
    aclFinalize();
    if (failed) return 1;
    printf("OK\n");
    return 0;
}
