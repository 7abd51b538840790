/* issue 12 class 8: the arrays aclGetViewShape / aclGetStorageShape / aclGetViewStrides return are released by a
 * C caller with free() (what CANN's samples do from C); under ASan an alloc-dealloc mismatch (arrays from C++
 * new[]) is a failure. NULL out-parameters are 161001. */
#include "repro.h"

int main(void)
{
    repro_setup();
    void *b;
    const int64_t d[3] = {2, 3, 4}, st[3] = {12, 4, 1};
    aclTensor *t = dev_tensor(ACL_FLOAT, 3, d, &b);
    int64_t *arr = NULL;
    uint64_t n = 0;
    for (int round = 0; round < 3; round++) {
        int s = round == 0 ? aclGetViewShape(t, &arr, &n) : round == 1 ? aclGetStorageShape(t, &arr, &n)
                                                                        : aclGetViewStrides(t, &arr, &n);
        const int64_t *want = round == 2 ? st : d;
        expect_true(s == 0 && n == 3 && arr && arr[0] == want[0] && arr[1] == want[1] && arr[2] == want[2],
                    round == 0 ? "aclGetViewShape" : round == 1 ? "aclGetStorageShape" : "aclGetViewStrides");
        free(arr); /* the C way: must match the allocation */
        arr = NULL;
    }
    expect_status(aclGetViewShape(t, NULL, &n), 161001, 161001, "aclGetViewShape(viewDims NULL)");
    expect_status(aclGetStorageShape(t, &arr, NULL), 161001, 161001, "aclGetStorageShape(storageDimsNum NULL)");
    expect_status(aclGetViewStrides(NULL, &arr, &n), 161001, 161001, "aclGetViewStrides(tensor NULL)");
    aclDestroyTensor(t);
    aclrtFree(b);
    return repro_finish("class8_shape_arrays");
}
