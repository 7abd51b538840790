/* Streams and events. The host runtime runs each task eagerly in the submitting thread, in submission order;
 * a stream is a mutex that serialises the tasks submitted to it from different threads, so synchronising a
 * stream waits for whatever another thread is running on it. Events record the time their stream reached
 * them, which gives aclrtEventElapsedTime real kernel timings. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include "../common/host_internal.h"
#include "../common/ptrset.h"

typedef struct {
    pthread_mutex_t lock;
    int32_t device;
} host_stream;

typedef struct {
    uint32_t flags;
    int recorded;
    struct timespec when;
} host_event;

static host_stream g_default_stream = {PTHREAD_MUTEX_INITIALIZER, 0};
static host_ptrset g_streams = HOST_PTRSET_INIT;
static host_ptrset g_events = HOST_PTRSET_INIT;

static int stream_valid(aclrtStream s) { return s == NULL || host_ptrset_contains(&g_streams, s); }

int acl_host_stream_acquire(aclrtStream stream)
{
    if (!stream_valid(stream))
        return acl_host_error(ACL_ERROR_INVALID_RESOURCE_HANDLE, "stream %p is not a live aclrtStream", stream);
    host_stream *s = stream ? (host_stream *)stream : &g_default_stream;
    pthread_mutex_lock(&s->lock);
    return ACL_SUCCESS;
}

void acl_host_stream_release(aclrtStream stream)
{
    host_stream *s = stream ? (host_stream *)stream : &g_default_stream;
    pthread_mutex_unlock(&s->lock);
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
    if (!stream || !host_ptrset_remove(&g_streams, stream))
        return acl_host_error(ACL_ERROR_INVALID_RESOURCE_HANDLE, "aclrtDestroyStream: %p is not a live stream",
                              stream);
    host_stream *s = (host_stream *)stream;
    pthread_mutex_lock(&s->lock); /* wait for a task another thread may be running on it */
    pthread_mutex_unlock(&s->lock);
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
    host_event *ev = event_of("aclrtRecordEvent", event, &e);
    if (!ev) return e;
    if ((e = acl_host_stream_acquire(stream)) != ACL_SUCCESS) return e;
    clock_gettime(CLOCK_MONOTONIC, &ev->when);
    ev->recorded = 1;
    acl_host_stream_release(stream);
    return ACL_SUCCESS;
}

aclError aclrtResetEvent(aclrtEvent event, aclrtStream stream)
{
    aclError e;
    host_event *ev = event_of("aclrtResetEvent", event, &e);
    if (!ev) return e;
    if (!stream_valid(stream))
        return acl_host_error(ACL_ERROR_INVALID_RESOURCE_HANDLE, "aclrtResetEvent: %p is not a live stream", stream);
    ev->recorded = 0;
    return ACL_SUCCESS;
}

aclError aclrtQueryEventStatus(aclrtEvent event, aclrtEventRecordedStatus *status)
{
    aclError e;
    host_event *ev = event_of("aclrtQueryEventStatus", event, &e);
    if (!ev) return e;
    if (!status) return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtQueryEventStatus: status must not be NULL");
    /* eager execution: a recorded event is complete, and so is one never recorded (as on the NPU) */
    *status = ACL_EVENT_RECORDED_STATUS_COMPLETE;
    return ACL_SUCCESS;
}

aclError aclrtStreamWaitEvent(aclrtStream stream, aclrtEvent event)
{
    aclError e;
    if (!event_of("aclrtStreamWaitEvent", event, &e)) return e;
    if (!stream_valid(stream))
        return acl_host_error(ACL_ERROR_INVALID_RESOURCE_HANDLE, "aclrtStreamWaitEvent: %p is not a live stream",
                              stream);
    return ACL_SUCCESS; /* work before the event has already run */
}

aclError aclrtSynchronizeEvent(aclrtEvent event)
{
    aclError e;
    return event_of("aclrtSynchronizeEvent", event, &e) ? ACL_SUCCESS : e;
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
    host_event *a = event_of("aclrtEventElapsedTime", startEvent, &e);
    if (!a) return e;
    host_event *b = event_of("aclrtEventElapsedTime", endEvent, &e);
    if (!b) return e;
    if (!a->recorded || !b->recorded)
        return acl_host_error(ACL_ERROR_INVALID_PARAM, "aclrtEventElapsedTime: both events must have been recorded");
    double d = (double)(b->when.tv_sec - a->when.tv_sec) * 1e3 + (double)(b->when.tv_nsec - a->when.tv_nsec) * 1e-6;
    *ms = (float)d;
    return ACL_SUCCESS;
}

aclError aclrtDestroyEvent(aclrtEvent event)
{
    if (!event || !host_ptrset_remove(&g_events, event))
        return acl_host_error(ACL_ERROR_INVALID_RESOURCE_HANDLE, "aclrtDestroyEvent: %p is not a live event", event);
    free(event);
    return ACL_SUCCESS;
}
