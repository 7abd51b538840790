/* Thread-local "most recent error" message behind aclGetRecentErrMsg, shared by all three libraries. */
#include <stdio.h>
#include <string.h>
#include "../common/host_internal.h"

static __thread char tls_msg[1024];
static __thread int tls_has_msg;

int acl_host_verror(int status, const char *fmt, va_list ap)
{
    vsnprintf(tls_msg, sizeof tls_msg, fmt, ap);
    tls_has_msg = 1;
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

/* Like CANN, the message is handed out once: reading it clears it, so a later success is not blamed on it.
 * The returned pointer stays valid until the next error recorded by this thread. */
const char *aclGetRecentErrMsg(void)
{
    if (!tls_has_msg) return NULL;
    tls_has_msg = 0;
    return tls_msg;
}
