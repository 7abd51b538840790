/*
 * The scaffolding every aclnn sample of this folder shares, in the style of the official CANN aclnn examples:
 * CHECK_RET / LOG_PRINT, Init (ACL, device, stream), CreateAclTensor (device copy of a host array and a contiguous
 * ND tensor over it), CopyToHost (result back to the host) and Finalize (stream, device, ACL).
 *
 * Plain C99 that also compiles as C++ (static inline, no GNU extensions), so it can be included by a C sample or
 * by a C++ program. samples/_aclnn_sample.py mirrors it line by line for the Python ports.
 */
#ifndef ACLNN_SAMPLE_H
#define ACLNN_SAMPLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "acl/acl.h"
#include "aclnn/aclnn_base.h"

#define CHECK_RET(cond, return_expr) \
    do {                             \
        if (!(cond)) {               \
            return_expr;             \
        }                            \
    } while (0)

/* the format string is the first of __VA_ARGS__, so a message without arguments needs no `##__VA_ARGS__` */
#define LOG_PRINT(...)       \
    do {                     \
        printf(__VA_ARGS__); \
    } while (0)

#define ACLNN_SAMPLE_MAX_DIMS 8

static inline int64_t GetShapeSize(const int64_t *shape, uint64_t ndim)
{
    int64_t shapeSize = 1;
    for (uint64_t i = 0; i < ndim; i++) shapeSize *= shape[i];
    return shapeSize;
}

/* fixed pattern: initialise ACL, select the device, create a stream */
static inline int Init(int32_t deviceId, aclrtStream *stream)
{
    aclError ret = aclInit(NULL);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclInit failed. ERROR: %d\n", ret); return ret);
    ret = aclrtSetDevice(deviceId);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtSetDevice failed. ERROR: %d\n", ret); return ret);
    ret = aclrtCreateStream(stream);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtCreateStream failed. ERROR: %d\n", ret); return ret);
    return 0;
}

/* device copy of hostData (elemSize bytes per element, shape[0] * ... * shape[ndim - 1] elements) and a
 * contiguous ND aclTensor of that shape over it */
static inline int CreateAclTensor(const void *hostData, size_t elemSize, const int64_t *shape, uint64_t ndim,
                                  void **deviceAddr, aclDataType dataType, aclTensor **tensor)
{
    CHECK_RET(ndim >= 1 && ndim <= ACLNN_SAMPLE_MAX_DIMS, LOG_PRINT("unsupported ndim %d\n", (int)ndim); return -1);
    size_t size = (size_t)GetShapeSize(shape, ndim) * elemSize;
    /* aclrtMalloc: device memory */
    aclError ret = aclrtMalloc(deviceAddr, size, ACL_MEM_MALLOC_HUGE_FIRST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtMalloc failed. ERROR: %d\n", ret); return ret);
    /* aclrtMemcpy: host data to the device */
    ret = aclrtMemcpy(*deviceAddr, size, hostData, size, ACL_MEMCPY_HOST_TO_DEVICE);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("aclrtMemcpy failed. ERROR: %d\n", ret); return ret);
    /* the strides of a contiguous tensor */
    int64_t strides[ACLNN_SAMPLE_MAX_DIMS];
    strides[ndim - 1] = 1;
    for (uint64_t i = ndim - 1; i > 0; i--) strides[i - 1] = shape[i] * strides[i];
    /* aclCreateTensor */
    *tensor = aclCreateTensor(shape, ndim, dataType, strides, 0, ACL_FORMAT_ND, shape, ndim, *deviceAddr);
    CHECK_RET(*tensor != NULL, LOG_PRINT("aclCreateTensor failed.\n"); return -1);
    return 0;
}

/* a result back to the host: size bytes from deviceAddr to hostData */
static inline int CopyToHost(void *hostData, const void *deviceAddr, size_t size)
{
    aclError ret = aclrtMemcpy(hostData, size, deviceAddr, size, ACL_MEMCPY_DEVICE_TO_HOST);
    CHECK_RET(ret == ACL_SUCCESS, LOG_PRINT("copy result from device to host failed. ERROR: %d\n", ret); return ret);
    return 0;
}

/* fixed pattern: destroy the stream, reset the device, finalise ACL */
static inline void Finalize(int32_t deviceId, aclrtStream stream)
{
    aclrtDestroyStream(stream);
    aclrtResetDevice(deviceId);
    aclFinalize();
}

#endif /* ACLNN_SAMPLE_H */
