/* issue 12 class 1: a destroyed aclTensor / aclIntArray or a wild handle given to phase 1 is an error status
 * (161001 or 161002: the handle is not a live object), never a read of freed or unmapped memory. */
#include "aclnnop/aclnn_moe_compute_expert_tokens.h"
#include "aclnnop/aclnn_moe_token_permute_with_ep.h"
#include "repro.h"

int main(void)
{
    repro_setup();
    void *b1, *b2, *b3, *b4, *b5, *b6;
    const int64_t m[1] = {8}, e[1] = {4};
    uint64_t ws = 0;
    aclOpExecutor *ex = NULL;

    aclTensor *sorted = dev_tensor(ACL_INT32, 1, m, &b1), *out = dev_tensor(ACL_INT32, 1, e, &b2);
    aclDestroyTensor(sorted);
    expect_status(aclnnMoeComputeExpertTokensGetWorkspaceSize(sorted, 4, out, &ws, &ex), 161001, 161002,
                  "destroyed sortedExperts");
    expect_status(aclnnMoeComputeExpertTokensGetWorkspaceSize((const aclTensor *)(uintptr_t)0x5000, 4, out, &ws, &ex),
                  161001, 161002, "wild (unmapped) sortedExperts");
    int64_t v[2] = {0, 1};
    aclIntArray *decoy = aclCreateIntArray(v, 2); /* an object of the wrong type */
    expect_status(aclnnMoeComputeExpertTokensGetWorkspaceSize((const aclTensor *)decoy, 4, out, &ws, &ex), 161001,
                  161002, "an aclIntArray given as sortedExperts");
    aclDestroyIntArray(decoy);
    aclDestroyTensor(out);

    /* a destroyed aclIntArray as rangeOptional */
    const int64_t tk[2] = {2, 2}, th[2] = {2, 4}, rows[2] = {4, 4}, flat[1] = {4};
    aclTensor *tokens = dev_tensor(ACL_FLOAT, 2, th, &b3), *indices = dev_tensor(ACL_INT32, 2, tk, &b4);
    aclTensor *pout = dev_tensor(ACL_FLOAT, 2, rows, &b5), *sidx = dev_tensor(ACL_INT32, 1, flat, &b6);
    int64_t r[2] = {0, 4};
    aclIntArray *range = aclCreateIntArray(r, 2);
    aclDestroyIntArray(range);
    expect_status(aclnnMoeTokenPermuteWithEpGetWorkspaceSize(tokens, indices, NULL, range, 0, false, pout, sidx, NULL,
                                                             &ws, &ex),
                  161001, 161002, "destroyed rangeOptional");
    expect_status(aclnnMoeTokenPermuteWithEpGetWorkspaceSize(tokens, indices, NULL,
                                                             (const aclIntArray *)(uintptr_t)0x6000, 0, false, pout,
                                                             sidx, NULL, &ws, &ex),
                  161001, 161002, "wild rangeOptional");
    /* a destroyed tensor in the getters */
    aclDestroyTensor(sidx);
    int64_t *dims = NULL;
    uint64_t nd = 0;
    expect_error(aclGetViewShape(sidx, &dims, &nd), "aclGetViewShape of a destroyed tensor");
    aclDestroyTensor(tokens);
    aclDestroyTensor(indices);
    aclDestroyTensor(pout);
    void *blocks[] = {b1, b2, b3, b4, b5, b6};
    for (int i = 0; i < 6; i++) aclrtFree(blocks[i]);
    return repro_finish("class1_destroyed_handles");
}
