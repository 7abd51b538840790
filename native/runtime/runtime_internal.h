/* Shared between the files of libascendcl only. */
#ifndef ACLNN_MOE_RUNTIME_INTERNAL_H_
#define ACLNN_MOE_RUNTIME_INTERNAL_H_

void host_memory_release_pool(void); /* aclFinalize: pooled (freed) mappings go back to the OS */

/* fork() handlers of each file, called by runtime.c's pthread_atfork handlers in lock order */
void host_memory_atfork_prepare(void);
void host_memory_atfork_parent(void);
void host_memory_atfork_child(void);
void host_stream_atfork_prepare(void);
void host_stream_atfork_parent(void);
void host_stream_atfork_child(void);

#endif
