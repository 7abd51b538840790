/* Thread-local "most recent error" text behind aclGetRecentErrMsg, shared by all three libraries.
 *
 * As in CANN's runtime (acl.cpp: a thread_local std::string that is never cleared), the text survives reads:
 * calling aclGetRecentErrMsg twice returns the same text, and an error recorded after the last read is put in
 * front of the older text, separated by '\n' (so the first line is always the newest error). A message is one
 * line. The host keeps at most HOST_ERRMSG_CAP bytes, dropping the oldest lines first. */
#include <stdio.h>
#include <string.h>
#include "../common/host_internal.h"

#define HOST_ERRMSG_LINE 1024
#define HOST_ERRMSG_CAP 4096

static __thread char tls_pending[HOST_ERRMSG_LINE]; /* recorded since the last read; the newest error wins */
static __thread int tls_has_pending;
static __thread char tls_text[HOST_ERRMSG_CAP];     /* what aclGetRecentErrMsg hands out, newest line first */
static __thread char tls_scratch[HOST_ERRMSG_CAP];

int acl_host_verror(int status, const char *fmt, va_list ap)
{
    vsnprintf(tls_pending, sizeof tls_pending, fmt, ap);
    for (char *p = tls_pending; *p; p++) /* one line per error, so that lines separate errors */
        if (*p == '\n') *p = ' ';
    tls_has_pending = 1;
    return status;
}

int acl_host_error(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    acl_host_verror(status, fmt, ap);
    va_end(ap);
    return status;
}

/* The returned pointer stays valid (and its text unchanged) until this thread's next aclGetRecentErrMsg. */
const char *aclGetRecentErrMsg(void)
{
    if (tls_has_pending) {
        tls_has_pending = 0;
        size_t n = strlen(tls_pending), old = strlen(tls_text);
        memcpy(tls_scratch, tls_pending, n);
        if (old && n + 1 < sizeof tls_scratch) {
            size_t keep = old < sizeof tls_scratch - n - 2 ? old : sizeof tls_scratch - n - 2;
            while (keep > 0 && keep < old && tls_text[keep] != '\n') keep--; /* cut at a line boundary */
            if (keep > 0) {
                tls_scratch[n++] = '\n';
                memcpy(tls_scratch + n, tls_text, keep);
                n += keep;
            }
        }
        tls_scratch[n] = 0;
        memcpy(tls_text, tls_scratch, n + 1);
    }
    return tls_text[0] ? tls_text : NULL;
}
