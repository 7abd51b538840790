/* Found by native/fuzz's leak loop (not in issue 12's list): the live-handle tables (native/common/ptrset.h)
 * doubled their capacity on every rehash, even when the rehash only dropped deleted slots, so creating and
 * destroying handles grew the heap without bound (~50 bytes per call). Under ASan this program checks that
 * 2x10^5 create/destroy pairs of tensors, arrays, streams and events leave the live heap where it was after a
 * warm-up; without ASan it only checks that the calls succeed. */
#include "repro.h"

size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

static void churn(int n)
{
    const int64_t d[1] = {4};
    int64_t v[2] = {0, 1};
    for (int i = 0; i < n; i++) {
        aclTensor *t = aclCreateTensor(d, 1, ACL_FLOAT, NULL, 0, ACL_FORMAT_ND, d, 1, NULL);
        aclIntArray *a = aclCreateIntArray(v, 2);
        if (!t || !a || aclDestroyTensor(t) || aclDestroyIntArray(a)) { g_failed++; return; }
        if (i % 64 == 0) {
            aclrtStream s;
            aclrtEvent e;
            if (aclrtCreateStream(&s) || aclrtDestroyStream(s) || aclrtCreateEvent(&e) || aclrtDestroyEvent(e)) {
                g_failed++;
                return;
            }
        }
    }
}

int main(void)
{
    repro_setup();
    churn(5000);
    size_t before = __sanitizer_get_current_allocated_bytes ? __sanitizer_get_current_allocated_bytes() : 0;
    churn(200000);
    size_t after = __sanitizer_get_current_allocated_bytes ? __sanitizer_get_current_allocated_bytes() : 0;
    expect_true(g_failed == 0, "2x10^5 create/destroy pairs succeed");
    char what[160];
    snprintf(what, sizeof what, "the live heap stays flat (%zu -> %zu bytes%s)", before, after,
             __sanitizer_get_current_allocated_bytes ? "" : ", not measured without ASan");
    expect_true(after <= before + 4096, what);
    return repro_finish("handle_churn");
}
