/*
 * What the init-routing operators share (MoeInitRoutingV3, MoeInitRoutingQuant, MoeInitRoutingQuantV2, and the
 * sort/gather logic of MoeInitRouting / MoeInitRoutingV2): the stable sort of the (token, slot) pairs by expert, the
 * expanded row index layouts, and the row writers that copy, convert or int8-quantise the token rows with the NPU
 * kernels' numerics.
 *
 * Flat positions are row-major: p = i*K + k for token i, slot k. "Output row r" is row r of expandedXOut viewed
 * 2-D ([rows, H] dropless, [E*C, H] drop/pad).
 */
#ifndef ACLNN_MOE_INIT_ROUTING_COMMON_H_
#define ACLNN_MOE_INIT_ROUTING_COMMON_H_

#include "op_common.h"

/* ---- V1 layout (MoeInitRouting, MoeInitRoutingQuant): rowIdx gives each pair's "row" value ----
 * Checks expertIdx in (-2^24, 2^24] (the ids sort as fp32 keys on the NPU) and that rowIdx is a permutation of
 * [0, N*K) (161002, nothing written), sorts stably, writes expandedExpertIdxOut[j] = fe[order[j]] and
 * expandedRowIdxOut[fr[order[j]]] = j, and returns for the gather (inside ws) src[j] = fr[order[j]] % N, the
 * token output row j reads. */
uint64_t irc_v1_ws_bytes(int64_t nk);
aclnnStatus irc_v1_route(const char *api, const aclTensor *row_idx, const aclTensor *expert_idx, void *ws,
                         const aclTensor *expanded_row_idx_out, const aclTensor *expanded_expert_idx_out,
                         const int64_t **src);

/* ---- V2 layout (MoeInitRoutingV2/V3, MoeInitRoutingQuantV2) ---- */
typedef struct {
    int64_t nk, k;
    int64_t start, end; /* the active expert range [start, end); bounded == 0: [0, inf) */
    int bounded;        /* ids must lie in [0, id_limit) */
    int64_t id_limit;
} IrcSortSpec;

typedef struct {
    int64_t *keys;  /* [nk] expert id of each flat position */
    int64_t *order; /* [nk] flat positions sorted by expert (stable); the first `avail` have ids in range */
    int64_t avail;
    int64_t range;  /* end - start (bounded), else 0 */
    int64_t nk;
    int64_t *count; /* [end-start] pairs per expert of the range (bounded only, else NULL) */
    int64_t *seg;   /* [end-start] first sorted position of each expert (bounded only) */
    int64_t *tmp;   /* [nk] free scratch for the callers once sorted */
} IrcSorted;

uint64_t irc_sort_ws_bytes(int64_t nk, int64_t range);
/* reads expertIdx, rejects ids < 0 or >= id_limit (161002, naming the element and the bound), sorts */
aclnnStatus irc_sort(const char *api, const aclTensor *expert_idx, const IrcSortSpec *spec, void *ws,
                     IrcSorted *out);

/* flat position feeding output row r, or -1 (empty): dropless (capacity 0) row r < min(avail, rows) reads
 * order[r]; drop/pad slot r = e*C + pos reads the pos-th pair of expert start + e when pos < count[e] */
static inline int64_t irc_row_pos(const IrcSorted *s, int64_t capacity, int64_t rows, int64_t r)
{
    /* the workspace is re-read after the index outputs were written: the bounds keep a workspace that overlaps an
     * output (a caller error) from reading outside the blocks */
    int64_t j = r;
    if (capacity <= 0) {
        if (r >= s->avail || r >= rows) return -1;
    } else {
        const int64_t e = r / capacity, pos = r % capacity;
        if (!s->count || e >= s->range || pos >= s->count[e]) return -1;
        j = s->seg[e] + pos;
    }
    if ((uint64_t)j >= (uint64_t)s->nk) return -1;
    const int64_t p = s->order[j];
    return (uint64_t)p < (uint64_t)s->nk ? p : -1;
}

/* expandedRowIdxOut, all N*K entries: dropless gather form (scatter 0): [order[j]] = j for j < avail, -1 for pairs
 * out of range; scatter form (1): [j] = order[j] for j < avail, -1 after; drop/pad (capacity > 0): e*C + pos for
 * kept pairs, -1 for dropped ones */
void irc_write_row_idx(const aclTensor *out, IrcSorted *s, int scatter, int64_t capacity);

/* ---- row writers ---- */
typedef enum {
    IRC_ROWS_COPY,         /* same dtype: bytes */
    IRC_ROWS_CONVERT,      /* unquantised, expandedXOut dtype != x dtype: value conversion (RNE, int8 saturating) */
    IRC_ROWS_STATIC_F16,   /* int8(rint(fp16(fp16(x) * fp16(scale)) + fp16(offset))): Quant V1/V2 kernels */
    IRC_ROWS_STATIC_F32,   /* int8(rint(x * scale + offset)) in fp32: InitRoutingV3 kernel */
    IRC_ROWS_DYNAMIC_EVEN, /* per-row max|x*smooth| / 127, q = rint(x*smooth / s): InitRoutingV3 kernel */
    IRC_ROWS_DYNAMIC_AWAY, /* the same, ties away from zero: QuantV2 kernel (fp16 truncation then CAST_ROUND) */
} IrcRowMode;

typedef struct {
    IrcRowMode mode;
    const aclTensor *x;         /* [N, H] */
    const aclTensor *out;       /* expandedXOut as [rows_total, H] */
    int64_t rows_total, h, k;
    const IrcSorted *sorted;    /* row r reads irc_row_pos(sorted, capacity, rows_valid, r) / k, or is zero */
    int64_t capacity, rows_valid;
    const int64_t *v1_src;      /* V1 layout instead of `sorted`: row r reads token v1_src[r] (irc_v1_route) */
    float scale, offset;        /* static modes */
    const aclTensor *smooth;    /* dynamic: NULL, [1, H], or [E, H] indexed by expert id - smooth_base */
    int64_t smooth_base;
    const aclTensor *row_scale; /* unquantised: a per-token fp32 [N] scale gathered into scale_out (or NULL) */
    const aclTensor *scale_out; /* per output row fp32 (dynamic scale, gathered row scale; 0 for empty rows) */
    int by_token;               /* internal (irc_write_rows): row r is token r's row */
} IrcRows;

/* writes every one of the rows_total rows (parallel over rows) and, when scale_out is set, its scale */
aclnnStatus irc_write_rows(const IrcRows *r, const char *api); /* ACLNN_ERR_INNER when out of memory */

/* int8 saturation of a rounded value (NaN -> 0), as the NPU's int8 casts */
static inline int8_t irc_sat_i8(float v)
{
    if (v != v) return 0;
    if (v >= 127.0f) return 127;
    if (v <= -128.0f) return -128;
    return (int8_t)v;
}

#endif /* ACLNN_MOE_INIT_ROUTING_COMMON_H_ */
