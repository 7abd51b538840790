/* Valid calls of every operator, with random small sizes, so that mutations start from inputs that pass phase 1
 * and reach the kernels. Parameters are set by their header names: a renamed or new parameter is left to the
 * generic defaults of fuzz_core.c (random small tensors), never mis-assigned. An operator without a template is
 * still fuzzed with those generic parameters. */
#include <string.h>
#include "fuzz.h"

fz_pspec *fz_find(fz_case *c, const char *name)
{
    for (int i = 0; i < c->nparams; i++)
        if (strcmp(c->def->params[i].name, name) == 0) return &c->p[i];
    return NULL;
}

void fz_tensor(fz_case *c, const char *name, aclDataType dt, int ndim, const int64_t *dims, int fill, int64_t lo,
               int64_t hi)
{
    fz_pspec *p = fz_find(c, name);
    if (!p || p->kind != FZ_TENSOR) return;
    p->present = 1;
    p->dtype = dt;
    p->format = ACL_FORMAT_ND;
    p->ndim = ndim;
    for (int i = 0; i < ndim; i++) p->dims[i] = dims[i];
    p->fill = fill;
    p->lo = lo;
    p->hi = hi;
}

void fz_absent(fz_case *c, const char *name)
{
    fz_pspec *p = fz_find(c, name);
    if (p) p->present = 0;
}

void fz_int(fz_case *c, const char *name, int64_t v)
{
    fz_pspec *p = fz_find(c, name);
    if (p && p->kind == FZ_INT) p->i = v;
}

void fz_bool(fz_case *c, const char *name, bool v)
{
    fz_pspec *p = fz_find(c, name);
    if (p && p->kind == FZ_BOOL) p->b = v;
}

void fz_double(fz_case *c, const char *name, double v)
{
    fz_pspec *p = fz_find(c, name);
    if (p && p->kind == FZ_DOUBLE) p->d = v;
}

void fz_intarray(fz_case *c, const char *name, int n, const int64_t *v)
{
    fz_pspec *p = fz_find(c, name);
    if (!p || p->kind != FZ_INTARRAY) return;
    p->present = 1;
    p->n = n;
    for (int i = 0; i < n; i++) p->v[i] = v[i];
}

#define D(...) ((const int64_t[]){__VA_ARGS__})

static aclDataType float_dtype(fz_src *s)
{
    static const aclDataType t[] = {ACL_FLOAT, ACL_FLOAT16, ACL_BF16};
    return t[fz_below(s, 3)];
}

static void compute_expert_tokens(fz_case *c, fz_src *s)
{
    /* sometimes past 2^16 rows: the parallel path, whose scratch lives in the workspace */
    int64_t m = fz_chance(s, 4) ? fz_range(s, (1 << 16), (1 << 17) + 64) : fz_range(s, 1, 64), e = fz_range(s, 1, 16);
    fz_tensor(c, "sortedExperts", ACL_INT32, 1, D(m), FILL_SORTED, 0, e);
    fz_int(c, "numExperts", e);
    fz_tensor(c, "out", ACL_INT32, 1, D(e), FILL_ZERO, 0, 0);
}

static void finalize_routing(fz_case *c, fz_src *s)
{
    int64_t n = fz_range(s, 1, 8), k = fz_range(s, 1, 4), h = fz_range(s, 1, 40), e = fz_range(s, 1, 8);
    aclDataType dt = float_dtype(s);
    fz_tensor(c, "expandedX", dt, 2, D(n * k, h), FILL_FLOAT, 0, 0);
    fz_tensor(c, "x1", dt, 2, D(n, h), FILL_FLOAT, 0, 0);
    fz_tensor(c, "x2Optional", dt, 2, D(n, h), FILL_FLOAT, 0, 0);
    if (fz_chance(s, 30)) fz_absent(c, "x2Optional");
    fz_tensor(c, "bias", dt, 2, D(e, h), FILL_FLOAT, 0, 0);
    fz_tensor(c, "scales", dt, 2, D(n, k), FILL_FLOAT, 0, 0);
    fz_tensor(c, "expandedRowIdx", ACL_INT32, 1, D(n * k), FILL_PERM, 0, n * k);
    fz_tensor(c, "expandedExpertIdx", ACL_INT32, 2, D(n, k), FILL_INDEX, 0, e);
    fz_tensor(c, "out", dt, 2, D(n, h), FILL_ZERO, 0, 0);
}

static void finalize_routing_v2(fz_case *c, fz_src *s)
{
    /* without scalesOptional, K is 1; E must be at least K */
    int no_scales = fz_chance(s, 20);
    int64_t n = fz_range(s, 1, 8), k = no_scales ? 1 : fz_range(s, 1, 4), h = fz_range(s, 1, 40);
    int64_t e = fz_range(s, k, 8), mode = (int64_t)fz_below(s, 4), cap = fz_range(s, 1, 4);
    aclDataType dt = float_dtype(s);
    if (mode == 1 || mode == 3) {
        fz_tensor(c, "expandedX", dt, 3, D(e, cap, h), FILL_FLOAT, 0, 0);
        fz_tensor(c, "expandedRowIdx", ACL_INT32, 1, D(n * k), FILL_INDEX, -1, e * cap);
    } else {
        fz_tensor(c, "expandedX", dt, 2, D(n * k, h), FILL_FLOAT, 0, 0);
        fz_tensor(c, "expandedRowIdx", ACL_INT32, 1, D(n * k), FILL_PERM, 0, n * k);
    }
    fz_tensor(c, "x1Optional", dt, 2, D(n, h), FILL_FLOAT, 0, 0);
    fz_tensor(c, "x2Optional", dt, 2, D(n, h), FILL_FLOAT, 0, 0);
    fz_tensor(c, "biasOptional", dt, 2, D(e, h), FILL_FLOAT, 0, 0);
    fz_tensor(c, "scalesOptional", dt == ACL_BF16 && fz_chance(s, 50) ? ACL_FLOAT : dt, 2, D(n, k), FILL_FLOAT, 0, 0);
    fz_tensor(c, "expertIdxOptional", ACL_INT32, 2, D(n, k), FILL_INDEX, 0, e);
    if (fz_chance(s, 25)) fz_absent(c, "x2Optional");
    if (fz_chance(s, 25)) { fz_absent(c, "biasOptional"); if (fz_chance(s, 50)) fz_absent(c, "expertIdxOptional"); }
    if (no_scales) fz_absent(c, "scalesOptional");
    fz_int(c, "dropPadMode", mode);
    fz_tensor(c, "out", dt, 2, D(n, h), FILL_ZERO, 0, 0);
}

static void gating_top_k(fz_case *c, fz_src *s)
{
    static const int64_t groups[] = {1, 2, 4, 8};
    int64_t rows = fz_range(s, 1, 8), g = groups[fz_below(s, 4)], per = fz_range(s, 2, 8), e = g * per;
    int64_t kg = fz_range(s, 1, g), k = fz_range(s, 1, kg * per < 8 ? kg * per : 8);
    aclDataType dt = float_dtype(s);
    fz_tensor(c, "x", dt, 2, D(rows, e), FILL_FLOAT, 0, 0);
    fz_tensor(c, "biasOptional", dt, 1, D(e), FILL_FLOAT, 0, 0);
    if (fz_chance(s, 40)) fz_absent(c, "biasOptional");
    fz_int(c, "k", k);
    fz_int(c, "kGroup", kg);
    fz_int(c, "groupCount", g);
    fz_int(c, "groupSelectMode", (int64_t)fz_below(s, 2));
    fz_int(c, "renorm", 0);
    fz_int(c, "normType", (int64_t)fz_below(s, 2));
    fz_bool(c, "outFlag", fz_chance(s, 50));
    fz_double(c, "routedScalingFactor", fz_chance(s, 50) ? 1.0 : 2.5);
    fz_double(c, "eps", 1e-20);
    fz_tensor(c, "yOut", dt, 2, D(rows, k), FILL_ZERO, 0, 0);
    fz_tensor(c, "expertIdxOut", ACL_INT32, 2, D(rows, k), FILL_ZERO, 0, 0);
    fz_tensor(c, "outOut", ACL_FLOAT, 2, D(rows, e), FILL_ZERO, 0, 0);
}

static void init_routing(fz_case *c, fz_src *s)
{
    int64_t n = fz_range(s, 1, 8), k = fz_range(s, 1, 4), h = fz_range(s, 1, 40), e = fz_range(s, 1, 16);
    int64_t active = fz_range(s, 0, n + 2), act = active < n ? active : n;
    aclDataType dt = float_dtype(s);
    fz_tensor(c, "x", dt, 2, D(n, h), FILL_FLOAT, 0, 0);
    fz_tensor(c, "rowIdx", ACL_INT32, 2, D(n, k), FILL_PERM, 0, n * k);
    fz_tensor(c, "expertIdx", ACL_INT32, 2, D(n, k), FILL_INDEX, 0, e);
    fz_int(c, "activeNum", active);
    fz_tensor(c, "expandedXOut", dt, 2, D(act * k, h), FILL_ZERO, 0, 0);
    fz_tensor(c, "expandedRowIdxOut", ACL_INT32, 1, D(n * k), FILL_ZERO, 0, 0);
    fz_tensor(c, "expandedExpertIdxOut", ACL_INT32, 1, D(n * k), FILL_ZERO, 0, 0);
}

static void init_routing_v2(fz_case *c, fz_src *s)
{
    int64_t n = fz_range(s, 1, 8), k = fz_range(s, 1, 4), h = fz_range(s, 1, 40), e = fz_range(s, 1, 16);
    int64_t mode = (int64_t)fz_below(s, 2), total = n * k;
    aclDataType dt = float_dtype(s);
    fz_tensor(c, "x", dt, 2, D(n, h), FILL_FLOAT, 0, 0);
    fz_tensor(c, "expertIdx", ACL_INT32, 2, D(n, k), FILL_INDEX, 0, e);
    fz_tensor(c, "expandedRowIdxOut", ACL_INT32, 1, D(total), FILL_ZERO, 0, 0);
    fz_int(c, "expertNumOptional", e);
    fz_int(c, "dropPadModeOptional", mode);
    if (mode == 0) {
        int64_t active = fz_range(s, 0, total + 2), rows = active == 0 || active > total ? total : active;
        int64_t flag = (int64_t)fz_below(s, 3);
        fz_int(c, "activeNumOptional", active);
        fz_int(c, "expertCapacityOptional", 0);
        fz_int(c, "expertTokensCountOrCumsumFlagOptional", flag);
        fz_bool(c, "expertTokensBeforeCapacityFlagOptional", false);
        fz_tensor(c, "expandedXOut", dt, 2, D(rows, h), FILL_ZERO, 0, 0);
        fz_tensor(c, "expertTokensCountOrCumsumOutOptional", ACL_INT32, 1, D(e), FILL_ZERO, 0, 0);
        if (flag == 0) fz_absent(c, "expertTokensCountOrCumsumOutOptional");
        fz_absent(c, "expertTokensBeforeCapacityOutOptional");
    } else {
        int64_t cap = fz_range(s, 1, n);
        bool before = fz_chance(s, 50);
        fz_int(c, "activeNumOptional", 0);
        fz_int(c, "expertCapacityOptional", cap);
        fz_int(c, "expertTokensCountOrCumsumFlagOptional", 0);
        fz_bool(c, "expertTokensBeforeCapacityFlagOptional", before);
        fz_tensor(c, "expandedXOut", dt, 3, D(e, cap, h), FILL_ZERO, 0, 0);
        fz_absent(c, "expertTokensCountOrCumsumOutOptional");
        fz_tensor(c, "expertTokensBeforeCapacityOutOptional", ACL_INT32, 1, D(e), FILL_ZERO, 0, 0);
        if (!before) fz_absent(c, "expertTokensBeforeCapacityOutOptional");
    }
}

static void re_routing(fz_case *c, fz_src *s)
{
    static const aclDataType tok[] = {ACL_FLOAT16, ACL_BF16, ACL_INT8};
    int64_t ranks = fz_range(s, 1, 4), e = fz_range(s, 1, 4), a = fz_range(s, 0, 24), h = fz_range(s, 1, 40);
    aclDataType dt = tok[fz_below(s, 3)], cdt = fz_chance(s, 50) ? ACL_INT32 : ACL_INT64;
    fz_tensor(c, "tokens", dt, 2, D(a, h), FILL_FLOAT, 0, 0);
    fz_tensor(c, "expertTokenNumPerRank", cdt, 2, D(ranks, e), FILL_COUNTS, 0, a);
    fz_tensor(c, "perTokenScalesOptional", ACL_FLOAT, 1, D(a), FILL_FLOAT, 0, 0);
    if (fz_chance(s, 30)) fz_absent(c, "perTokenScalesOptional");
    fz_int(c, "expertTokenNumType", 1);
    fz_int(c, "idxType", 0); /* 1 (scatter) is not supported */
    fz_tensor(c, "permuteTokensOut", dt, 2, D(a, h), FILL_ZERO, 0, 0);
    fz_tensor(c, "permutePerTokenScalesOut", ACL_FLOAT, 1, D(a), FILL_ZERO, 0, 0);
    fz_tensor(c, "permuteTokenIdxOut", ACL_INT32, 1, D(a), FILL_ZERO, 0, 0);
    fz_tensor(c, "expertTokenNumOut", cdt, 1, D(e), FILL_ZERO, 0, 0);
}

static void token_permute_with_ep(fz_case *c, fz_src *s)
{
    int64_t t = fz_range(s, 1, 8), k = fz_range(s, 1, 4), h = fz_range(s, 1, 40), e = fz_range(s, 1, 16);
    int64_t start = fz_range(s, 0, t * k - 1), end = fz_range(s, start + 1, t * k);
    aclDataType dt = float_dtype(s), it = fz_chance(s, 70) ? ACL_INT32 : ACL_INT64;
    if (fz_chance(s, 20)) { /* indices [T], one expert per token */
        k = 1;
        start = fz_range(s, 0, t - 1);
        end = fz_range(s, start + 1, t);
        fz_tensor(c, "indices", it, 1, D(t), FILL_INDEX, 0, e);
        fz_tensor(c, "probsOptional", dt, 1, D(t), FILL_FLOAT, 0, 0);
    } else {
        fz_tensor(c, "indices", it, 2, D(t, k), FILL_INDEX, 0, e);
        fz_tensor(c, "probsOptional", dt, 2, D(t, k), FILL_FLOAT, 0, 0);
    }
    fz_tensor(c, "tokens", dt, 2, D(t, h), FILL_FLOAT, 0, 0);
    if (fz_chance(s, 30)) fz_absent(c, "probsOptional");
    if (fz_chance(s, 25)) { fz_absent(c, "rangeOptional"); start = 0; end = t * k; }
    else fz_intarray(c, "rangeOptional", 2, D(start, end));
    fz_int(c, "numOutTokens", 0);
    fz_bool(c, "paddedMode", false);
    fz_tensor(c, "permuteTokensOut", dt, 2, D(end - start, h), FILL_ZERO, 0, 0);
    fz_tensor(c, "sortedIndicesOut", ACL_INT32, 1, D(t * k), FILL_ZERO, 0, 0);
    fz_tensor(c, "permuteProbsOut", dt, 1, D(end - start), FILL_ZERO, 0, 0);
}

static void token_unpermute_with_ep(fz_case *c, fz_src *s)
{
    int64_t t = fz_range(s, 1, 8), k = fz_range(s, 1, 4), h = fz_range(s, 1, 40);
    int64_t start = fz_range(s, 0, t * k - 1), end = fz_range(s, start + 1, t * k);
    aclDataType dt = float_dtype(s);
    if (fz_chance(s, 25)) { fz_absent(c, "rangeOptional"); start = 0; end = t * k; }
    else fz_intarray(c, "rangeOptional", 2, D(start, end));
    fz_tensor(c, "permutedTokens", dt, 2, D(end - start, h), FILL_FLOAT, 0, 0);
    fz_tensor(c, "sortedIndices", ACL_INT32, 1, D(t * k), FILL_PERM, 0, t * k);
    fz_tensor(c, "probsOptional", dt, 2, D(t, k), FILL_FLOAT, 0, 0);
    if (fz_chance(s, 30)) fz_absent(c, "probsOptional");
    fz_int(c, "numTopk", k);
    fz_bool(c, "paddedMode", false);
    if (fz_chance(s, 30)) fz_intarray(c, "restoreShapeOptional", 2, D(t, h));
    else fz_absent(c, "restoreShapeOptional");
    fz_tensor(c, "out", dt, 2, D(t, h), FILL_ZERO, 0, 0);
}

/* the routing map of a valid call: random 0/1 where its entries may exceed nothing (padded mode reads none; without
 * it the map may hold at most T*K entries, so random only when K = E), else none */
static void routing_map(fz_case *c, fz_src *s, const char *name, int64_t t, int64_t e, int any)
{
    fz_tensor(c, name, ACL_INT8, 2, D(t, e), any || fz_chance(s, 30) ? FILL_INDEX : FILL_ZERO, 0, any ? 2 : 1);
}

static void token_permute_with_routing_map_grad(fz_case *c, fz_src *s)
{
    int64_t t = fz_range(s, 1, 8), e = fz_range(s, 1, 8), h = fz_range(s, 0, 40);
    const int drop = fz_chance(s, 40);
    int64_t k = fz_range(s, 1, e), rows, len;
    aclDataType dt = float_dtype(s);
    if (drop) {
        rows = len = e * fz_range(s, 0, 4);
        fz_tensor(c, "sortedIndices", ACL_INT32, 1, D(len), FILL_INDEX, 0, t);
    } else {
        if (fz_chance(s, 40)) k = e;
        len = t * k;
        rows = fz_range(s, 0, len);
        fz_tensor(c, "sortedIndices", ACL_INT32, 1, D(len), FILL_PERM, 0, len);
    }
    fz_tensor(c, "permutedTokensOutputGrad", dt, 2, D(rows, h), FILL_FLOAT, 0, 0);
    fz_tensor(c, "permutedProbsOutputGradOptional", dt, 1, D(drop ? rows : len), FILL_FLOAT, 0, 0);
    routing_map(c, s, "routingMapOptional", t, e, drop || k == e);
    fz_int(c, "experts_num", e);
    fz_int(c, "tokens_num", t);
    fz_bool(c, "dropAndPad", drop);
    fz_tensor(c, "tokenGradOut", dt, 2, D(t, h), FILL_ZERO, 0, 0);
    fz_tensor(c, "probsGradOutOptional", dt, 2, D(t, e), FILL_ZERO, 0, 0);
    if (fz_chance(s, 30)) {
        fz_absent(c, "permutedProbsOutputGradOptional");
        fz_absent(c, "probsGradOutOptional");
        if (fz_chance(s, 50)) fz_absent(c, "routingMapOptional");
    }
}

static void token_unpermute_with_routing_map_grad(fz_case *c, fz_src *s)
{
    int64_t t = fz_range(s, 1, 8), e = fz_range(s, 1, 8), h = fz_range(s, 0, 40), len;
    const int drop = fz_chance(s, 40);
    int64_t k = fz_chance(s, 40) ? e : fz_range(s, 1, e);
    aclDataType dt = float_dtype(s);
    if (drop) {
        len = e * fz_range(s, 1, t); /* capacity <= T */
        fz_tensor(c, "outIndex", ACL_INT32, 1, D(len), FILL_PERM, 0, len);
        fz_tensor(c, "permuteTokenId", ACL_INT32, 1, D(len), FILL_INDEX, 0, t);
    } else {
        len = t * k;
        fz_tensor(c, "outIndex", ACL_INT32, 1, D(len), FILL_PERM, 0, len);
        fz_tensor(c, "permuteTokenId", ACL_INT32, 1, D(len), FILL_PERM, 0, len);
    }
    fz_tensor(c, "unpermutedTokensGrad", dt, 2, D(t, h), FILL_FLOAT, 0, 0);
    routing_map(c, s, "routingMapOptional", t, e, drop || k == e);
    fz_tensor(c, "permutedTokensOptional", dt, 2, D(len, h), FILL_FLOAT, 0, 0);
    fz_tensor(c, "probsOptional", dt, 2, D(t, e), FILL_FLOAT, 0, 0);
    fz_bool(c, "dropAndPad", drop);
    if (fz_chance(s, 30)) fz_intarray(c, "restoreShapeOptional", 2, D(t, h));
    else fz_absent(c, "restoreShapeOptional");
    fz_tensor(c, "permutedTokensGradOut", dt, 2, D(len, h), FILL_ZERO, 0, 0);
    fz_tensor(c, "probsGradOutOptional", dt, 2, D(t, e), FILL_ZERO, 0, 0);
    if (fz_chance(s, 30)) {
        fz_absent(c, "probsOptional");
        fz_absent(c, "probsGradOutOptional");
        if (fz_chance(s, 50)) fz_absent(c, "permutedTokensOptional");
    }
}

static const struct {
    const char *api;
    void (*fn)(fz_case *, fz_src *);
} TEMPLATES[] = {
    {"aclnnMoeComputeExpertTokens", compute_expert_tokens},
    {"aclnnMoeFinalizeRouting", finalize_routing},
    {"aclnnMoeFinalizeRoutingV2", finalize_routing_v2},
    {"aclnnMoeGatingTopK", gating_top_k},
    {"aclnnMoeInitRouting", init_routing},
    {"aclnnMoeInitRoutingV2", init_routing_v2},
    {"aclnnMoeReRouting", re_routing},
    {"aclnnMoeTokenPermuteWithEp", token_permute_with_ep},
    {"aclnnMoeTokenUnpermuteWithEp", token_unpermute_with_ep},
    {"aclnnMoeTokenPermuteWithRoutingMapGrad", token_permute_with_routing_map_grad},
    {"aclnnMoeTokenUnpermuteWithRoutingMapGrad", token_unpermute_with_routing_map_grad},
};

int fz_has_template(const char *api)
{
    for (size_t i = 0; i < sizeof TEMPLATES / sizeof TEMPLATES[0]; i++)
        if (strcmp(TEMPLATES[i].api, api) == 0) return 1;
    return 0;
}

int fz_template(fz_case *c, fz_src *s)
{
    for (size_t i = 0; i < sizeof TEMPLATES / sizeof TEMPLATES[0]; i++)
        if (strcmp(TEMPLATES[i].api, c->def->api) == 0) {
            TEMPLATES[i].fn(c, s);
            return 1;
        }
    return 0;
}
