/* ACL init/finalize, devices and contexts, versions. The host runtime offers one device (id 0) unless
 * ACLNN_MOE_HOST_DEVICES asks for more; each device is the host CPU. The current device is per thread,
 * as in CANN, where aclrtSetDevice binds the calling thread to the device's default context. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/host_internal.h"
#include "../common/ptrset.h"
#include "runtime_internal.h"

#define HOST_MAX_DEVICES 64
#define HOST_CONTEXT_MAGIC 0x43545831u

typedef struct {
    uint32_t magic;
    int32_t device;
} host_context;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_initialized; /* written under g_lock, read without it by every entry point */
static pthread_once_t g_device_count_once = PTHREAD_ONCE_INIT;
static int g_device_count = 1;
static int g_device_refs[HOST_MAX_DEVICES];
static host_context g_default_ctx[HOST_MAX_DEVICES];
static host_ptrset g_contexts = HOST_PTRSET_INIT;
static __thread host_context *tls_ctx;

static void read_device_count(void)
{
    const char *env = getenv("ACLNN_MOE_HOST_DEVICES");
    int n = env ? atoi(env) : 1;
    g_device_count = n < 1 ? 1 : (n > HOST_MAX_DEVICES ? HOST_MAX_DEVICES : n);
}

static int device_count(void)
{
    pthread_once(&g_device_count_once, read_device_count);
    return g_device_count;
}

aclError aclInit(const char *configPath)
{
    (void)configPath; /* a JSON config (dump/profiling switches) has nothing to configure on the host */
    pthread_mutex_lock(&g_lock);
    int again = atomic_load(&g_initialized);
    atomic_store(&g_initialized, 1);
    pthread_mutex_unlock(&g_lock);
    if (again) return acl_host_error(ACL_ERROR_REPEAT_INITIALIZE, "aclInit: ACL is already initialized");
    return ACL_SUCCESS;
}

/* aclFinalize while other threads run operators: tasks already running finish normally (nothing they use is
 * freed: live device blocks, streams and executors stay valid until their owners release them); every later
 * operator phase 2 returns ACLNN_ERR_RUNTIME_ERROR (361001) and runtime calls that need a device return
 * ACL_ERROR_RT_CONTEXT_NULL / ACL_ERROR_UNINITIALIZE, until aclInit is called again. The pool of freed
 * device mappings goes back to the OS. */
aclError aclFinalize(void)
{
    pthread_mutex_lock(&g_lock);
    int was = atomic_load(&g_initialized);
    atomic_store(&g_initialized, 0);
    pthread_mutex_unlock(&g_lock);
    if (!was) return acl_host_error(ACL_ERROR_REPEAT_FINALIZE, "aclFinalize: ACL is not initialized");
    host_memory_release_pool();
    return ACL_SUCCESS;
}

static aclError check_device_id(const char *api, int32_t deviceId)
{
    if (deviceId < 0 || deviceId >= device_count())
        return acl_host_error(ACL_ERROR_RT_INVALID_DEVICEID,
                              "%s: deviceId %d is invalid; the host runtime has %d device(s) [0, %d)", api, deviceId,
                              device_count(), device_count());
    return ACL_SUCCESS;
}

aclError aclrtSetDevice(int32_t deviceId)
{
    if (!atomic_load(&g_initialized))
        return acl_host_error(ACL_ERROR_UNINITIALIZE, "aclrtSetDevice: call aclInit first");
    aclError e = check_device_id("aclrtSetDevice", deviceId);
    if (e) return e;
    pthread_mutex_lock(&g_lock);
    if (g_device_refs[deviceId]++ == 0) {
        g_default_ctx[deviceId].magic = HOST_CONTEXT_MAGIC;
        g_default_ctx[deviceId].device = deviceId;
    }
    pthread_mutex_unlock(&g_lock);
    tls_ctx = &g_default_ctx[deviceId];
    return ACL_SUCCESS;
}

static aclError reset_device(const char *api, int32_t deviceId, int force)
{
    aclError e = check_device_id(api, deviceId);
    if (e) return e;
    pthread_mutex_lock(&g_lock);
    if (g_device_refs[deviceId] > 0) g_device_refs[deviceId] = force ? 0 : g_device_refs[deviceId] - 1;
    pthread_mutex_unlock(&g_lock);
    if (tls_ctx && tls_ctx->device == deviceId) tls_ctx = NULL;
    return ACL_SUCCESS;
}

aclError aclrtResetDevice(int32_t deviceId) { return reset_device("aclrtResetDevice", deviceId, 0); }
aclError aclrtResetDeviceForce(int32_t deviceId) { return reset_device("aclrtResetDeviceForce", deviceId, 1); }

aclError aclrtGetDevice(int32_t *deviceId)
{
    if (!deviceId) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtGetDevice: deviceId must not be NULL");
    if (!tls_ctx) return acl_host_error(ACL_ERROR_RT_CONTEXT_NULL, "aclrtGetDevice: no device is set on this thread");
    *deviceId = tls_ctx->device;
    return ACL_SUCCESS;
}

aclError aclrtGetDeviceCount(uint32_t *count)
{
    if (!count) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtGetDeviceCount: count must not be NULL");
    *count = (uint32_t)device_count();
    return ACL_SUCCESS;
}

aclError aclrtCreateContext(aclrtContext *context, int32_t deviceId)
{
    if (!context) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtCreateContext: context must not be NULL");
    if (!atomic_load(&g_initialized))
        return acl_host_error(ACL_ERROR_UNINITIALIZE, "aclrtCreateContext: call aclInit first");
    aclError e = check_device_id("aclrtCreateContext", deviceId);
    if (e) return e;
    host_context *c = (host_context *)malloc(sizeof *c);
    if (!c) return acl_host_error(ACL_ERROR_BAD_ALLOC, "aclrtCreateContext: out of memory");
    c->magic = HOST_CONTEXT_MAGIC;
    c->device = deviceId;
    host_ptrset_add(&g_contexts, c);
    tls_ctx = c; /* CANN makes a new context current for the calling thread */
    *context = c;
    return ACL_SUCCESS;
}

aclError aclrtDestroyContext(aclrtContext context)
{
    if (!context || !host_ptrset_remove(&g_contexts, context))
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtDestroyContext: %p is not a live context", context);
    if (tls_ctx == context) tls_ctx = NULL;
    ((host_context *)context)->magic = 0;
    free(context);
    return ACL_SUCCESS;
}

aclError aclrtSetCurrentContext(aclrtContext context)
{
    host_context *c = (host_context *)context;
    int is_default = c >= &g_default_ctx[0] && c < &g_default_ctx[HOST_MAX_DEVICES] && c->magic == HOST_CONTEXT_MAGIC;
    if (!c || (!is_default && !host_ptrset_contains(&g_contexts, c)))
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtSetCurrentContext: %p is not a live context", context);
    tls_ctx = c;
    return ACL_SUCCESS;
}

aclError aclrtGetCurrentContext(aclrtContext *context)
{
    if (!context) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtGetCurrentContext: context must not be NULL");
    if (!tls_ctx) return acl_host_error(ACL_ERROR_RT_CONTEXT_NULL, "aclrtGetCurrentContext: no current context");
    *context = tls_ctx;
    return ACL_SUCCESS;
}

int acl_host_runtime_ready(void) { return atomic_load(&g_initialized) && tls_ctx != NULL; }

aclError aclrtGetVersion(int32_t *majorVersion, int32_t *minorVersion, int32_t *patchVersion)
{
    if (!majorVersion || !minorVersion || !patchVersion)
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtGetVersion: version pointers must not be NULL");
    *majorVersion = ACL_MAJOR_VERSION;
    *minorVersion = ACL_MINOR_VERSION;
    *patchVersion = ACL_PATCH_VERSION;
    return ACL_SUCCESS;
}

#ifndef ACLNN_MOE_VERSION
#define ACLNN_MOE_VERSION "0.0.0"
#endif

aclError aclsysGetCANNVersion(aclCANNPackageName name, aclCANNPackageVersion *version)
{
    if (!version) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclsysGetCANNVersion: version must not be NULL");
    if ((int)name < ACL_PKG_NAME_CANN || (int)name > ACL_PKG_NAME_DRIVER)
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclsysGetCANNVersion: unknown package name %d", (int)name);
    memset(version, 0, sizeof *version);
    /* The host runtime is not a CANN release: it reports its own version with a "host" marker. */
    snprintf(version->version, sizeof version->version, "%s-host", ACLNN_MOE_VERSION);
    int maj = 0, min = 0, rel = 0;
    sscanf(ACLNN_MOE_VERSION, "%d.%d.%d", &maj, &min, &rel);
    snprintf(version->majorVersion, sizeof version->majorVersion, "%d", maj);
    snprintf(version->minorVersion, sizeof version->minorVersion, "%d", min);
    snprintf(version->releaseVersion, sizeof version->releaseVersion, "%d", rel);
    snprintf(version->patchVersion, sizeof version->patchVersion, "host");
    return ACL_SUCCESS;
}

const char *aclrtGetSocName(void) { return "HostCPU"; }

/* ---- fork() (pthread_atfork, registered when the library loads). The prepare handlers take every lock of the
 * runtime in lock order (streams wait for the tasks running on them), so the child starts consistent: with the
 * parent's initialisation, devices, streams, events and memory, every stream idle, and only the forking thread.
 * The child may go on using the runtime, or aclFinalize and aclInit it again. ---- */
static void atfork_prepare(void)
{
    host_stream_atfork_prepare();
    pthread_mutex_lock(&g_lock);
    host_ptrset_lock(&g_contexts);
    host_memory_atfork_prepare();
}

static void atfork_parent(void)
{
    host_memory_atfork_parent();
    host_ptrset_unlock(&g_contexts);
    pthread_mutex_unlock(&g_lock);
    host_stream_atfork_parent();
}

static void atfork_child(void)
{
    host_memory_atfork_child();
    host_ptrset_unlock(&g_contexts);
    pthread_mutex_unlock(&g_lock);
    host_stream_atfork_child();
}

__attribute__((constructor)) static void register_atfork(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
