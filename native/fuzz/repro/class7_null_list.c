/* issue 12 class 7: list and array constructors given NULL with a non-zero size return NULL (no object),
 * never dereference NULL. */
#include "repro.h"

int main(void)
{
    repro_setup();
    expect_true(aclCreateTensorList(NULL, 2) == NULL, "aclCreateTensorList(NULL, 2) is NULL");
    expect_true(aclCreateTensorList(NULL, UINT64_MAX) == NULL, "aclCreateTensorList(NULL, UINT64_MAX) is NULL");
    expect_true(aclCreateScalarList(NULL, 3) == NULL, "aclCreateScalarList(NULL, 3) is NULL");
    expect_true(aclCreateIntArray(NULL, 3) == NULL, "aclCreateIntArray(NULL, 3) is NULL");
    expect_true(aclCreateFloatArray(NULL, 3) == NULL, "aclCreateFloatArray(NULL, 3) is NULL");
    expect_true(aclCreateBoolArray(NULL, 3) == NULL, "aclCreateBoolArray(NULL, 3) is NULL");
    /* an empty list from NULL is a valid object */
    aclTensorList *l = aclCreateTensorList(NULL, 0);
    if (l) expect_true(aclDestroyTensorList(l) == 0, "the empty list is destroyed");
    /* a list holding a destroyed tensor is refused */
    void *b;
    const int64_t d[1] = {4};
    aclTensor *t = dev_tensor(ACL_FLOAT, 1, d, &b);
    aclDestroyTensor(t);
    const aclTensor *dead[1] = {t};
    expect_true(aclCreateTensorList(dead, 1) == NULL, "aclCreateTensorList of a destroyed tensor is NULL");
    aclrtFree(b);
    return repro_finish("class7_null_list");
}
