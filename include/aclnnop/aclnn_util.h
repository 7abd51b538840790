/* aclnn-moe: export macro of the operator headers (CANN's aclnnop/aclnn_util.h). */
#ifndef ACLNNOP_ACLNN_UTIL_H_
#define ACLNNOP_ACLNN_UTIL_H_

#ifndef ACLNN_API
#define ACLNN_API __attribute__((visibility("default")))
#endif

#endif /* ACLNNOP_ACLNN_UTIL_H_ */
