/* Streams and events. The host runtime runs each task eagerly in the submitting thread, in submission order;
 * a stream is a mutex that serialises the tasks submitted to it from different threads, so synchronising a
 * stream waits for whatever another thread is running on it. Events record the time their stream reached
 * them, which gives aclrtEventElapsedTime real kernel timings.
 *
 * Lifetime: a thread using a stream holds a reference (users, counted under g_streams_lock together with the
 * liveness lookup), so aclrtDestroyStream unpublishes the stream at once (later uses get
 * ACL_ERROR_INVALID_RESOURCE_HANDLE) and frees it only when the last thread using or waiting for it is done;
 * like CANN's, it waits for the stream's work. Event state is read and written under g_events_lock. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include "../common/host_internal.h"
#include "../common/ptrset.h"
#include "runtime_internal.h"

typedef struct {
    pthread_mutex_t lock; /* held while a task runs on the stream */
    int32_t device;
    int users;            /* threads between lookup and release (g_streams_lock) */
} host_stream;

typedef struct {
    uint32_t flags;
    int recorded;
    struct timespec when;
} host_event;

static host_stream g_default_stream = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
static pthread_mutex_t g_streams_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_streams_idle = PTHREAD_COND_INITIALIZER;
static host_ptrset g_streams = HOST_PTRSET_INIT;
static pthread_mutex_t g_events_lock = PTHREAD_MUTEX_INITIALIZER;
static host_ptrset g_events = HOST_PTRSET_INIT;

static int stream_valid(aclrtStream s) { return s == NULL || host_ptrset_contains(&g_streams, s); }

/* a referenced stream (NULL: not live) */
static host_stream *stream_ref(aclrtStream stream)
{
    if (!stream) return &g_default_stream;
    host_stream *s = NULL;
    pthread_mutex_lock(&g_streams_lock);
    if (host_ptrset_contains(&g_streams, stream)) {
        s = (host_stream *)stream;
        s->users++;
    }
    pthread_mutex_unlock(&g_streams_lock);
    return s;
}

static void stream_unref(host_stream *s)
{
    if (s == &g_default_stream) return;
    pthread_mutex_lock(&g_streams_lock);
    if (--s->users == 0) pthread_cond_broadcast(&g_streams_idle);
    pthread_mutex_unlock(&g_streams_lock);
}

int acl_host_stream_acquire(aclrtStream stream)
{
    host_stream *s = stream_ref(stream);
    if (!s) return acl_host_error(ACL_ERROR_INVALID_RESOURCE_HANDLE, "stream %p is not a live aclrtStream", stream);
    pthread_mutex_lock(&s->lock);
    return ACL_SUCCESS;
}

void acl_host_stream_release(aclrtStream stream)
{
    host_stream *s = stream ? (host_stream *)stream : &g_default_stream;
    pthread_mutex_unlock(&s->lock);
    stream_unref(s);
}

aclError aclrtCreateStreamWithConfig(aclrtStream *stream, uint32_t priority, uint32_t flag)
{
    (void)priority;
    (void)flag;
    if (!stream) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtCreateStream: stream must not be NULL");
    if (!acl_host_runtime_ready())
        return acl_host_error(ACL_ERROR_RT_CONTEXT_NULL, "aclrtCreateStream: no device is set on this thread");
    host_stream *s = (host_stream *)malloc(sizeof *s);
    if (!s) return acl_host_error(ACL_ERROR_BAD_ALLOC, "aclrtCreateStream: out of memory");
    pthread_mutex_init(&s->lock, NULL);
    int32_t dev = 0;
    aclrtGetDevice(&dev);
    s->device = dev;
    s->users = 0;
    if (host_ptrset_add(&g_streams, s) != 0) {
        free(s);
        return acl_host_error(ACL_ERROR_BAD_ALLOC, "aclrtCreateStream: out of memory");
    }
    *stream = s;
    return ACL_SUCCESS;
}

aclError aclrtCreateStream(aclrtStream *stream) { return aclrtCreateStreamWithConfig(stream, 0, 0); }

aclError aclrtDestroyStream(aclrtStream stream)
{
    pthread_mutex_lock(&g_streams_lock);
    if (!stream || !host_ptrset_remove(&g_streams, stream)) {
        pthread_mutex_unlock(&g_streams_lock);
        return acl_host_error(ACL_ERROR_INVALID_RESOURCE_HANDLE, "aclrtDestroyStream: %p is not a live stream",
                              stream);
    }
    host_stream *s = (host_stream *)stream;
    while (s->users > 0) pthread_cond_wait(&g_streams_idle, &g_streams_lock); /* its running and queued tasks */
    pthread_mutex_unlock(&g_streams_lock);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return ACL_SUCCESS;
}

aclError aclrtDestroyStreamForce(aclrtStream stream) { return aclrtDestroyStream(stream); }

aclError aclrtSynchronizeStream(aclrtStream stream)
{
    aclError e = acl_host_stream_acquire(stream);
    if (e) return e;
    acl_host_stream_release(stream);
    return ACL_SUCCESS;
}

aclError aclrtSynchronizeStreamWithTimeout(aclrtStream stream, int32_t timeout)
{
    if (timeout < -1)
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtSynchronizeStreamWithTimeout: timeout %d < -1", timeout);
    return aclrtSynchronizeStream(stream);
}

aclError aclrtCreateEventWithFlag(aclrtEvent *event, uint32_t flag)
{
    if (!event) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtCreateEvent: event must not be NULL");
    if (!acl_host_runtime_ready())
        return acl_host_error(ACL_ERROR_RT_CONTEXT_NULL, "aclrtCreateEvent: no device is set on this thread");
    host_event *ev = (host_event *)calloc(1, sizeof *ev);
    if (!ev || host_ptrset_add(&g_events, ev) != 0) {
        free(ev);
        return acl_host_error(ACL_ERROR_BAD_ALLOC, "aclrtCreateEvent: out of memory");
    }
    ev->flags = flag;
    *event = ev;
    return ACL_SUCCESS;
}

aclError aclrtCreateEvent(aclrtEvent *event) { return aclrtCreateEventWithFlag(event, ACL_EVENT_TIME_LINE); }
aclError aclrtCreateEventExWithFlag(aclrtEvent *event, uint32_t flag) { return aclrtCreateEventWithFlag(event, flag); }

/* the live event (NULL: not live, error recorded); caller holds g_events_lock */
static host_event *event_of(const char *api, aclrtEvent event, aclError *err)
{
    if (!event || !host_ptrset_contains(&g_events, event)) {
        *err = acl_host_error(ACL_ERROR_INVALID_RESOURCE_HANDLE, "%s: %p is not a live event", api, event);
        return NULL;
    }
    *err = ACL_SUCCESS;
    return (host_event *)event;
}

aclError aclrtRecordEvent(aclrtEvent event, aclrtStream stream)
{
    aclError e;
    if ((e = acl_host_stream_acquire(stream)) != ACL_SUCCESS) return e; /* the stream's work comes first */
    pthread_mutex_lock(&g_events_lock);
    host_event *ev = event_of("aclrtRecordEvent", event, &e);
    if (ev) {
        clock_gettime(CLOCK_MONOTONIC, &ev->when);
        ev->recorded = 1;
    }
    pthread_mutex_unlock(&g_events_lock);
    acl_host_stream_release(stream);
    return e;
}

aclError aclrtResetEvent(aclrtEvent event, aclrtStream stream)
{
    aclError e;
    if (!stream_valid(stream))
        return acl_host_error(ACL_ERROR_INVALID_RESOURCE_HANDLE, "aclrtResetEvent: %p is not a live stream", stream);
    pthread_mutex_lock(&g_events_lock);
    host_event *ev = event_of("aclrtResetEvent", event, &e);
    if (ev) ev->recorded = 0;
    pthread_mutex_unlock(&g_events_lock);
    return e;
}

aclError aclrtQueryEventStatus(aclrtEvent event, aclrtEventRecordedStatus *status)
{
    aclError e;
    pthread_mutex_lock(&g_events_lock);
    host_event *ev = event_of("aclrtQueryEventStatus", event, &e);
    pthread_mutex_unlock(&g_events_lock);
    if (!ev) return e;
    if (!status) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtQueryEventStatus: status must not be NULL");
    /* eager execution: a recorded event is complete, and so is one never recorded (as on the NPU) */
    *status = ACL_EVENT_RECORDED_STATUS_COMPLETE;
    return ACL_SUCCESS;
}

aclError aclrtStreamWaitEvent(aclrtStream stream, aclrtEvent event)
{
    aclError e;
    pthread_mutex_lock(&g_events_lock);
    host_event *ev = event_of("aclrtStreamWaitEvent", event, &e);
    pthread_mutex_unlock(&g_events_lock);
    if (!ev) return e;
    if (!stream_valid(stream))
        return acl_host_error(ACL_ERROR_INVALID_RESOURCE_HANDLE, "aclrtStreamWaitEvent: %p is not a live stream",
                              stream);
    return ACL_SUCCESS; /* work before the event has already run */
}

aclError aclrtSynchronizeEvent(aclrtEvent event)
{
    aclError e;
    pthread_mutex_lock(&g_events_lock);
    host_event *ev = event_of("aclrtSynchronizeEvent", event, &e);
    pthread_mutex_unlock(&g_events_lock);
    return ev ? ACL_SUCCESS : e;
}

aclError aclrtSynchronizeEventWithTimeout(aclrtEvent event, int32_t timeout)
{
    if (timeout < -1)
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtSynchronizeEventWithTimeout: timeout %d < -1", timeout);
    return aclrtSynchronizeEvent(event);
}

aclError aclrtEventElapsedTime(float *ms, aclrtEvent startEvent, aclrtEvent endEvent)
{
    aclError e;
    if (!ms) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtEventElapsedTime: ms must not be NULL");
    pthread_mutex_lock(&g_events_lock);
    host_event *a = event_of("aclrtEventElapsedTime", startEvent, &e);
    host_event *b = a ? event_of("aclrtEventElapsedTime", endEvent, &e) : NULL;
    if (b && (!a->recorded || !b->recorded))
        e = acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtEventElapsedTime: both events must have been recorded");
    else if (b)
        *ms = (float)((double)(b->when.tv_sec - a->when.tv_sec) * 1e3 +
                      (double)(b->when.tv_nsec - a->when.tv_nsec) * 1e-6);
    pthread_mutex_unlock(&g_events_lock);
    return e;
}

aclError aclrtDestroyEvent(aclrtEvent event)
{
    pthread_mutex_lock(&g_events_lock);
    int live = event && host_ptrset_remove(&g_events, event);
    if (live) free(event);
    pthread_mutex_unlock(&g_events_lock);
    if (!live)
        return acl_host_error(ACL_ERROR_INVALID_RESOURCE_HANDLE, "aclrtDestroyEvent: %p is not a live event", event);
    return ACL_SUCCESS;
}

/* ---- fork(): the prepare handler waits for the tasks running on every stream (it takes their locks), so the
 * child starts with every stream idle and every result of those tasks complete; tasks waiting for a stream in
 * other threads do not exist in the child, so the reference counts start from zero there. ---- */
static void lock_stream(void *s) { pthread_mutex_lock(&((host_stream *)s)->lock); }
static void unlock_stream(void *s) { pthread_mutex_unlock(&((host_stream *)s)->lock); }
static void unlock_stream_child(void *s)
{
    ((host_stream *)s)->users = 0;
    pthread_mutex_unlock(&((host_stream *)s)->lock);
}

void host_stream_atfork_prepare(void)
{
    pthread_mutex_lock(&g_streams_lock);
    host_ptrset_lock(&g_streams);
    pthread_mutex_lock(&g_default_stream.lock);
    host_ptrset_foreach_locked(&g_streams, lock_stream);
    pthread_mutex_lock(&g_events_lock);
    host_ptrset_lock(&g_events);
}

void host_stream_atfork_parent(void)
{
    host_ptrset_unlock(&g_events);
    pthread_mutex_unlock(&g_events_lock);
    host_ptrset_foreach_locked(&g_streams, unlock_stream);
    pthread_mutex_unlock(&g_default_stream.lock);
    host_ptrset_unlock(&g_streams);
    pthread_mutex_unlock(&g_streams_lock);
}

void host_stream_atfork_child(void)
{
    host_ptrset_unlock(&g_events);
    pthread_mutex_unlock(&g_events_lock);
    host_ptrset_foreach_locked(&g_streams, unlock_stream_child);
    pthread_mutex_unlock(&g_default_stream.lock);
    host_ptrset_unlock(&g_streams);
    pthread_cond_init(&g_streams_idle, NULL); /* waiters of the parent are not in the child */
    pthread_mutex_unlock(&g_streams_lock);
}
