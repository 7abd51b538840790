/* Found by native/fuzz (not in issue 12's list): aclrtMemcpy with ACL_MEMCPY_DEFAULT infers each side's kind from
 * its address; a destination that starts inside a device block but runs past its end was taken for host memory
 * and copied into (a heap overflow). Such copies are errors (ACL_ERROR_INVALID_PARAM), as are sets past an end
 * and frees of interior, stale or foreign addresses. */
#include "repro.h"

int main(void)
{
    repro_setup();
    void *b = NULL, *h = malloc(256);
    if (aclrtMalloc(&b, 128, ACL_MEM_MALLOC_HUGE_FIRST) != 0 || !h) return 2;
    memset(b, 0, 128);
    memset(h, 0, 256);
    expect_error(aclrtMemcpy((char *)b + 100, 64, b, 64, ACL_MEMCPY_DEFAULT), "DEFAULT copy running past dst's block");
    expect_error(aclrtMemcpy(h, 256, (char *)b + 64, 128, ACL_MEMCPY_DEFAULT), "DEFAULT copy running past src's block");
    expect_error(aclrtMemcpy(b, 128, (char *)b + 64, 128, ACL_MEMCPY_DEVICE_TO_DEVICE), "D2D copy past src's end");
    expect_error(aclrtMemcpy((char *)b + 1, 128, h, 128, ACL_MEMCPY_HOST_TO_DEVICE), "H2D copy past dst's end");
    expect_error(aclrtMemset((char *)b + 64, 128, 0, 128), "memset past the end");
    expect_true(aclrtMemcpy(b, 128, h, 128, ACL_MEMCPY_DEFAULT) == 0, "DEFAULT copy host to a whole device block");
    expect_error(aclrtFree((char *)b + 64), "aclrtFree of an interior address");
    expect_error(aclrtFree(h), "aclrtFree of malloc memory");
    expect_true(aclrtFree(b) == 0, "aclrtFree of the block");
    expect_error(aclrtFree(b), "aclrtFree twice");
    free(h);
    return repro_finish("memcpy_default");
}
