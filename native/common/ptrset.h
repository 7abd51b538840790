/*
 * A small thread-safe set of live handles (streams, events, tensors, executors ...). Every library of the host
 * runtime validates the handles it is given against one of these before touching them, so that a stale or
 * foreign pointer yields a status code instead of a crash. Header-only: each library owns its own sets.
 */
#ifndef ACLNN_MOE_PTRSET_H_
#define ACLNN_MOE_PTRSET_H_

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    pthread_mutex_t lock;
    uintptr_t *slots; /* open addressing; 0 = empty, 1 = deleted */
    size_t cap, used, live;
} host_ptrset;

#define HOST_PTRSET_INIT {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0}

static inline size_t host_ptrset_hash(uintptr_t p, size_t cap)
{
    uint64_t h = (uint64_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (cap - 1);
}

static int host_ptrset_grow_locked(host_ptrset *s)
{
    /* sized from the live handles, not the old capacity: a rehash that only drops deleted slots keeps the
     * capacity, so create/destroy churn does not double the table forever (an unbounded growth of a
     * long-running process; issue 12's leak loop) */
    size_t ncap = 64;
    while (ncap < 4 * (s->live + 1)) ncap *= 2;
    uintptr_t *ns = (uintptr_t *)calloc(ncap, sizeof(uintptr_t));
    if (!ns) return -1;
    for (size_t i = 0; i < s->cap; i++) {
        uintptr_t v = s->slots[i];
        if (v > 1) {
            size_t j = host_ptrset_hash(v, ncap);
            while (ns[j]) j = (j + 1) & (ncap - 1);
            ns[j] = v;
        }
    }
    free(s->slots);
    s->slots = ns;
    s->cap = ncap;
    s->used = s->live;
    return 0;
}

static inline int host_ptrset_add(host_ptrset *s, const void *p)
{
    uintptr_t v = (uintptr_t)p;
    pthread_mutex_lock(&s->lock);
    if ((s->used + 1) * 2 > s->cap && host_ptrset_grow_locked(s) != 0) {
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    size_t j = host_ptrset_hash(v, s->cap);
    while (s->slots[j] > 1) j = (j + 1) & (s->cap - 1);
    if (s->slots[j] == 0) s->used++;
    s->slots[j] = v;
    s->live++;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static inline int host_ptrset_find_locked(const host_ptrset *s, uintptr_t v, size_t *at)
{
    if (!s->cap || v <= 1) return 0;
    size_t j = host_ptrset_hash(v, s->cap);
    while (s->slots[j]) {
        if (s->slots[j] == v) { *at = j; return 1; }
        j = (j + 1) & (s->cap - 1);
    }
    return 0;
}

static inline int host_ptrset_contains(host_ptrset *s, const void *p)
{
    size_t at;
    pthread_mutex_lock(&s->lock);
    int found = host_ptrset_find_locked(s, (uintptr_t)p, &at);
    pthread_mutex_unlock(&s->lock);
    return found;
}

/* removes p; returns 1 if it was present (so exactly one caller wins a racing double free) */
static inline int host_ptrset_remove(host_ptrset *s, const void *p)
{
    size_t at;
    pthread_mutex_lock(&s->lock);
    int found = host_ptrset_find_locked(s, (uintptr_t)p, &at);
    if (found) { s->slots[at] = 1; s->live--; }
    pthread_mutex_unlock(&s->lock);
    return found;
}

/* calls fn on every member; caller holds the lock (host_ptrset_lock) */
static inline void host_ptrset_foreach_locked(host_ptrset *s, void (*fn)(void *))
{
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i] > 1) fn((void *)s->slots[i]);
}

/* fork() support: the owner of a set holds its lock across fork() so the child sees it consistent */
static inline void host_ptrset_lock(host_ptrset *s) { pthread_mutex_lock(&s->lock); }
static inline void host_ptrset_unlock(host_ptrset *s) { pthread_mutex_unlock(&s->lock); }

#endif /* ACLNN_MOE_PTRSET_H_ */
