/*
 * Fused channel-wise Clebsch-Gordan "tensor square" for holovae.
 *
 * Plain C (GNU C11: vector extensions) + OpenMP, no torch headers; loaded from
 * Python with ctypes (holovae/nn/fused_cg.py).  The plain entry points take
 * row-major contiguous matrices; the "mapped" ones reach every row through a
 * pointer map (see map_t), which lets them read and write the model's
 * per-degree tensors in place:
 *
 *   forward : Y[r, n]  = sum_{e: row[e]==r} val[e] * X[i[e], n] * X[j[e], n]
 *             X [d_in, N], Y [d_out, N]
 *   backward: dX[i[e], n] += val[e] * dY[row[e], n] * X[j[e], n]
 *             dX[j[e], n] += val[e] * dY[row[e], n] * X[i[e], n]
 *             dY [d_out, N], X [d_in, N], dX [d_in, N]
 *
 * Both directions are one "gathered bilinear" computation
 *
 *   out[o, n] = sum_{e in entries(o)} v_e * A[p_e, n] * B[q_e, n]
 *
 * forward : o = row, p = i, q = j, A = B = X
 *
 * The backward is computed pair by pair instead: the entries are grouped by their unordered
 * input pair {a, b} = {i, j}, and for each pair
 *
 *   t[n] = sum_{e in pair} v_e * dY[row_e, n]       (v_e doubled when a == b)
 *   dX[a, n] += t[n] * X[b, n],   dX[b, n] += t[n] * X[a, n]   (once when a == b)
 *
 * into a tile-sized dX buffer that is written out when the tile is done.  A CG entry's pair
 * is shared by ~2.5 entries on average (the output rows m3 and degrees l3 it feeds), so this
 * is ~1.8 vector FMAs per entry where the gather form (o = i, p = row, q = j and o = j, p = row,
 * q = i, each a multiply and an FMA) needs 4.  Blocks whose pairs are shared less than
 * PAIR_MIN_SHARE times on average (small ones) keep the gather form.
 *
 * A "plan" (the entries sorted by o with a stable counting sort, O(nnz + dims),
 * values converted to the working type) is built once per distinct entry list
 * and kept in a small LRU cache keyed by the exact bytes of (row, i, j, val)
 * (compared with memcmp), so repeated calls with the same CG entries only pay
 * one pass over the entry lists.
 *
 * Columns are cut into tiles of TILE columns (NVEC vectors of VBYTES bytes per
 * row).  For each tile the rows of A and B are packed into a small contiguous,
 * zero-padded, thread-local buffer, so the inner loops always have the
 * compile-time width TILE and the accumulator of one output row lives in NVEC
 * vector registers for the whole row; every output row of the tile is written
 * exactly once (rows without entries get zeros): no atomics, no zero-fill pass.
 * Tiles are distributed over OpenMP threads.
 *
 * holovae_cg_linear_forward_* (inference) multiplies each output block by a weight matrix
 * in the same pass, chunk by chunk of samples, calling the BLAS gemm it is handed from the
 * kernel's threads, so the square's output stays in the cache (see DEFINE_LINEAR);
 * holovae_cg_linear_backward_* makes the output gradients from the weights' side the same way
 * and runs the backward on them in the cache (DEFINE_LINEAR_BW).
 *
 * Return codes: 0 ok, -1 index out of range, -2 out of memory, -3 bad argument.
 */
#pragma GCC optimize ("no-tree-loop-distribute-patterns")
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A tile row is NVEC vectors of VBYTES bytes (GCC vector extensions; the compiler maps
 * them to AVX/AVX2 or SSE registers, whatever -march allows). */
#ifndef VBYTES
#define VBYTES 32
#endif
#ifndef NVEC
#define NVEC 6
#endif
#ifndef UNROLL2
#define UNROLL2 1
#endif
/* Plans kept (LRU).  A model cycles through all of its blocks' plans every step, so fewer
 * slots than plans means every call misses: the MNIST model has 18 (9 distinct entry lists,
 * forward and backward), and at 16 slots rebuilt them all each step. */
#ifndef CACHE_SLOTS
#define CACHE_SLOTS 64
#endif
/* The backward goes pair by pair when the CG entries per input pair average at least this
 * (measured: 2.3-2.7 in the paper's big blocks, 20% faster; 1.2 in a 4 -> 2 block, 15% slower) */
#ifndef PAIR_MIN_SHARE
#define PAIR_MIN_SHARE 1.6
#endif
#define TILE_F32 (NVEC * VBYTES / 4)
#define TILE_F64 (NVEC * VBYTES / 8)
#define ALIGN 64
/* Outputs of at least this many bytes are written with non-temporal (streaming) stores:
 * they would not stay in cache anyway, and streaming skips the read-for-ownership. */
#ifndef NT_MIN_BYTES
#define NT_MIN_BYTES (16LL << 20)
#endif

#if defined(__AVX__) && VBYTES == 32
#include <immintrin.h>
#define STREAM_f32(p, v) _mm256_stream_ps((float *)(p), (__m256)(v))
#define STREAM_f64(p, v) _mm256_stream_pd((double *)(p), (__m256d)(v))
#define STREAM_FENCE() _mm_sfence()
#else
#define STREAM_f32(p, v) memcpy((p), &(v), VBYTES)
#define STREAM_f64(p, v) memcpy((p), &(v), VBYTES)
#define STREAM_FENCE() ((void)0)
#endif

/* ------------------------------------------------------------------------ */
/* plan                                                                      */
/* ------------------------------------------------------------------------ */

typedef struct {
    int32_t n_out;     /* output rows                                        */
    int64_t n_ent;
    int64_t *out_ptr;  /* [n_out + 1] -> entries                             */
    int64_t *ent_p;    /* [n_ent] byte offset of the A row in a packed tile  */
    int64_t *ent_q;    /* [n_ent] byte offset of the B row in a packed tile  */
    void *vals;        /* [n_ent] values in the working type (2x if i == j)  */
    int kind;          /* 0: gather by output row; 1: backward by input pair */
    int64_t *grp_a;    /* kind 1: [n_out] byte offsets of the pair's rows a  */
    int64_t *grp_b;    /*         and b (a <= b) in a packed tile            */
} plan_t;

static void plan_free(plan_t *pl)
{
    free(pl->out_ptr);
    free(pl->ent_p);
    free(pl->ent_q);
    free(pl->vals);
    free(pl->grp_a);
    free(pl->grp_b);
    memset(pl, 0, sizeof(*pl));
}

static int64_t idx_at(const void *p, int is64, int64_t e)
{
    return is64 ? ((const int64_t *)p)[e] : (int64_t)((const int32_t *)p)[e];
}

/* the backward's sort key: unordered input pair, then output row (A-row locality) */
typedef struct {
    int64_t pair;
    int32_t row, src;
} pkey_t;

static int pkey_cmp(const void *x, const void *y)
{
    const pkey_t *a = x, *b = y;
    if (a->pair != b->pair) return a->pair < b->pair ? -1 : 1;
    if (a->row != b->row) return a->row < b->row ? -1 : 1;
    return (a->src > b->src) - (a->src < b->src);
}

/* kind 1: entries grouped by unordered input pair (see the header); indices checked by the
 * caller. */
static int plan_make_pairs(plan_t *pl, int elsize, int64_t nnz, int64_t d_in, const void *row,
                           const void *ii, const void *jj, int is64, const void *val,
                           int64_t tile_bytes)
{
    const size_t mm = (size_t)(nnz > 0 ? nnz : 1);
    pkey_t *k = malloc(mm * sizeof(pkey_t));
    pl->out_ptr = malloc((mm + 1) * sizeof(int64_t));
    pl->ent_p = malloc(mm * sizeof(int64_t));
    pl->vals = malloc(mm * (size_t)elsize);
    pl->grp_a = malloc(mm * sizeof(int64_t));
    pl->grp_b = malloc(mm * sizeof(int64_t));
    if (!k || !pl->out_ptr || !pl->ent_p || !pl->vals || !pl->grp_a || !pl->grp_b) {
        free(k);
        return -2;
    }
    for (int64_t e = 0; e < nnz; ++e) {
        int64_t a = idx_at(ii, is64, e), b = idx_at(jj, is64, e);
        if (a > b) { int64_t t = a; a = b; b = t; }
        k[e].pair = a * d_in + b;
        k[e].row = (int32_t)idx_at(row, is64, e);
        k[e].src = (int32_t)e;
    }
    qsort(k, (size_t)nnz, sizeof(pkey_t), pkey_cmp);
    int64_t g = -1;
    for (int64_t e = 0; e < nnz; ++e) {
        if (e == 0 || k[e].pair != k[e - 1].pair) {
            ++g;
            pl->out_ptr[g] = e;
            pl->grp_a[g] = (k[e].pair / d_in) * tile_bytes;
            pl->grp_b[g] = (k[e].pair % d_in) * tile_bytes;
        }
        const int two = pl->grp_a[g] == pl->grp_b[g];
        pl->ent_p[e] = (int64_t)k[e].row * tile_bytes;
        if (elsize == 4) {
            float v = ((const float *)val)[k[e].src];
            ((float *)pl->vals)[e] = two ? v + v : v;
        } else {
            double v = ((const double *)val)[k[e].src];
            ((double *)pl->vals)[e] = two ? v + v : v;
        }
    }
    pl->out_ptr[g + 1] = nnz;
    pl->n_out = (int32_t)(g + 1);
    pl->n_ent = nnz;
    pl->kind = 1;
    free(k);
    return 0;
}

/*
 * kind 0 = forward, 1 = backward.  elsize = 4 (float) or 8 (double).
 * Entries are stably sorted by output row (and within a row by p, which keeps
 * the A rows of neighbouring entries together).
 */
static int plan_make(plan_t *pl, int kind, int elsize, int64_t nnz, int64_t d_in, int64_t d_out,
                     const void *row, const void *ii, const void *jj, int is64, const void *val,
                     int64_t tile_bytes)
{
    memset(pl, 0, sizeof(*pl));
    if (d_in <= 0 || d_out <= 0 || d_in > INT32_MAX - 1 || d_out > INT32_MAX - 1 || nnz < 0)
        return -3;
    for (int64_t e = 0; e < nnz; ++e) {
        int64_t r = idx_at(row, is64, e), a = idx_at(ii, is64, e), b = idx_at(jj, is64, e);
        if (r < 0 || r >= d_out || a < 0 || a >= d_in || b < 0 || b >= d_in) return -1;
    }
    if (kind == 1 && nnz <= INT32_MAX) {
        int rc1 = plan_make_pairs(pl, elsize, nnz, d_in, row, ii, jj, is64, val, tile_bytes);
        /* pairs pay off when they are shared: the pair update costs about two entries */
        if (rc1 != 0 || (double)nnz >= PAIR_MIN_SHARE * (double)pl->n_out) {
            if (rc1 != 0) plan_free(pl);
            return rc1;
        }
        plan_free(pl);          /* few shared pairs (small blocks): the gather form below */
    }
    const int64_t n_out = kind == 0 ? d_out : d_in;
    const int64_t n_p = kind == 0 ? d_in : d_out;
    int64_t m = 0;
    if (kind == 0) m = nnz;
    else for (int64_t e = 0; e < nnz; ++e) m += idx_at(ii, is64, e) == idx_at(jj, is64, e) ? 1 : 2;

    int rc = -2;
    const size_t mm = (size_t)(m > 0 ? m : 1);
    const int64_t big = n_out > n_p ? n_out : n_p;
    int32_t *ko = malloc(mm * sizeof(int32_t)), *kp = malloc(mm * sizeof(int32_t));
    int32_t *kq = malloc(mm * sizeof(int32_t)), *two = malloc(mm * sizeof(int32_t));
    int64_t *src = malloc(mm * sizeof(int64_t)), *ord1 = malloc(mm * sizeof(int64_t));
    int64_t *cnt = calloc((size_t)big + 1, sizeof(int64_t));
    pl->out_ptr = malloc(((size_t)n_out + 1) * sizeof(int64_t));
    pl->ent_p = malloc(mm * sizeof(int64_t));
    pl->ent_q = malloc(mm * sizeof(int64_t));
    pl->vals = malloc(mm * (size_t)elsize);
    if (!ko || !kp || !kq || !two || !src || !ord1 || !cnt || !pl->out_ptr || !pl->ent_p ||
        !pl->ent_q || !pl->vals)
        goto done;

    int64_t t = 0;
    for (int64_t e = 0; e < nnz; ++e) {
        int32_t r = (int32_t)idx_at(row, is64, e);
        int32_t a = (int32_t)idx_at(ii, is64, e), b = (int32_t)idx_at(jj, is64, e);
        if (kind == 0) {
            ko[t] = r; kp[t] = a; kq[t] = b; two[t] = 0; src[t] = e; ++t;
        } else {
            ko[t] = a; kp[t] = r; kq[t] = b; two[t] = (a == b); src[t] = e; ++t;
            if (a != b) { ko[t] = b; kp[t] = r; kq[t] = a; two[t] = 0; src[t] = e; ++t; }
        }
    }
    /* stable LSD counting sort: by p, then by o */
    for (int64_t e = 0; e < m; ++e) cnt[kp[e] + 1]++;
    for (int64_t k = 0; k < n_p; ++k) cnt[k + 1] += cnt[k];
    for (int64_t e = 0; e < m; ++e) ord1[cnt[kp[e]]++] = e;
    memset(cnt, 0, ((size_t)big + 1) * sizeof(int64_t));
    for (int64_t e = 0; e < m; ++e) cnt[ko[e] + 1]++;
    for (int64_t k = 0; k < n_out; ++k) cnt[k + 1] += cnt[k];
    memcpy(pl->out_ptr, cnt, ((size_t)n_out + 1) * sizeof(int64_t));
    for (int64_t s = 0; s < m; ++s) {
        int64_t e = ord1[s];
        int64_t d = cnt[ko[e]]++;
        pl->ent_p[d] = (int64_t)kp[e] * tile_bytes;
        pl->ent_q[d] = (int64_t)kq[e] * tile_bytes;
        if (elsize == 4) {
            float v = ((const float *)val)[src[e]];
            ((float *)pl->vals)[d] = two[e] ? v + v : v;
        } else {
            double v = ((const double *)val)[src[e]];
            ((double *)pl->vals)[d] = two[e] ? v + v : v;
        }
    }
    pl->n_out = (int32_t)n_out;
    pl->n_ent = m;
    rc = 0;
done:
    free(ko); free(kp); free(kq); free(two); free(src); free(ord1); free(cnt);
    if (rc != 0) plan_free(pl);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* plan cache (keyed by the exact bytes of the inputs; thread safe)          */
/* ------------------------------------------------------------------------ */

typedef struct {
    int kind, elsize, is64;
    int64_t nnz, d_in, d_out;
    void *key;          /* copy of row | i | j | val bytes                   */
    size_t key_bytes;
    plan_t plan;
    int refs;           /* callers using the plan right now                  */
    int evicted;        /* free when refs drops to 0                         */
    uint64_t stamp;
} centry_t;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t plan_builds;             /* cache misses since the library was loaded */
static centry_t *cache[CACHE_SLOTS];
static uint64_t cache_clock;

static void centry_free(centry_t *c)
{
    if (!c) return;
    plan_free(&c->plan);
    free(c->key);
    free(c);
}

static void cache_release(centry_t *c)
{
    pthread_mutex_lock(&cache_mu);
    int dead = (--c->refs == 0) && c->evicted;
    pthread_mutex_unlock(&cache_mu);
    if (dead) centry_free(c);
}

static int key_equal(const centry_t *c, const void *const parts[4], const size_t sizes[4])
{
    const unsigned char *k = (const unsigned char *)c->key;
    for (int s = 0; s < 4; ++s) {
        if (sizes[s] && memcmp(k, parts[s], sizes[s]) != 0) return 0;
        k += sizes[s];
    }
    return 1;
}

static int cache_get(centry_t **out, int kind, int elsize, int64_t nnz, int64_t d_in, int64_t d_out,
                     const void *row, const void *ii, const void *jj, int is64, const void *val,
                     int64_t tile_bytes)
{
    const size_t ib = (size_t)nnz * (is64 ? 8 : 4);
    const void *parts[4] = {row, ii, jj, val};
    const size_t sizes[4] = {ib, ib, ib, (size_t)nnz * (size_t)elsize};

    pthread_mutex_lock(&cache_mu);
    for (int s = 0; s < CACHE_SLOTS; ++s) {
        centry_t *c = cache[s];
        if (c && c->kind == kind && c->elsize == elsize && c->is64 == is64 &&
            c->nnz == nnz && c->d_in == d_in && c->d_out == d_out && key_equal(c, parts, sizes)) {
            c->refs++;
            c->stamp = ++cache_clock;
            pthread_mutex_unlock(&cache_mu);
            *out = c;
            return 0;
        }
    }
    pthread_mutex_unlock(&cache_mu);

    /* miss: build outside the lock */
    centry_t *c = calloc(1, sizeof(centry_t));
    if (!c) return -2;
    int rc = plan_make(&c->plan, kind, elsize, nnz, d_in, d_out, row, ii, jj, is64, val, tile_bytes);
    if (rc) { free(c); return rc; }
    c->key_bytes = sizes[0] + sizes[1] + sizes[2] + sizes[3];
    c->key = malloc(c->key_bytes ? c->key_bytes : 1);
    if (!c->key) { centry_free(c); return -2; }
    unsigned char *k = (unsigned char *)c->key;
    for (int s = 0; s < 4; ++s) { if (sizes[s]) memcpy(k, parts[s], sizes[s]); k += sizes[s]; }
    c->kind = kind; c->elsize = elsize; c->is64 = is64;
    c->nnz = nnz; c->d_in = d_in; c->d_out = d_out;
    c->refs = 1;

    centry_t *victim = NULL;
    pthread_mutex_lock(&cache_mu);
    c->stamp = ++cache_clock;
    ++plan_builds;
    int slot = -1;
    for (int s = 0; s < CACHE_SLOTS && slot < 0; ++s) if (!cache[s]) slot = s;
    if (slot < 0) {
        slot = 0;
        for (int s = 1; s < CACHE_SLOTS; ++s) if (cache[s]->stamp < cache[slot]->stamp) slot = s;
        victim = cache[slot];
        victim->evicted = 1;
        if (victim->refs > 0) victim = NULL; /* the last user frees it */
    }
    cache[slot] = c;
    pthread_mutex_unlock(&cache_mu);
    centry_free(victim);
    *out = c;
    return 0;
}

int64_t holovae_cg_plan_builds(void)
{
    pthread_mutex_lock(&cache_mu);
    const int64_t n = plan_builds;
    pthread_mutex_unlock(&cache_mu);
    return n;
}

/* Drop every cached plan (plans in use are freed by their last user). */
void holovae_cg_clear_cache(void)
{
    centry_t *dead[CACHE_SLOTS];
    int nd = 0;
    pthread_mutex_lock(&cache_mu);
    for (int s = 0; s < CACHE_SLOTS; ++s) {
        if (!cache[s]) continue;
        cache[s]->evicted = 1;
        if (cache[s]->refs == 0) dead[nd++] = cache[s];
        cache[s] = NULL;
    }
    pthread_mutex_unlock(&cache_mu);
    for (int k = 0; k < nd; ++k) centry_free(dead[k]);
}

/* ------------------------------------------------------------------------ */
/* thread-local packing buffer (kept between calls: no malloc/page faults)   */
/* ------------------------------------------------------------------------ */

static __thread void *tl_buf;
static __thread size_t tl_cap;
static pthread_key_t tl_key;            /* frees a thread's buffer when the thread exits */
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;
static int tl_key_ok;

static void tl_make_key(void) { tl_key_ok = pthread_key_create(&tl_key, free) == 0; }

static void *scratch(size_t bytes)
{
    if (bytes > tl_cap || !tl_buf) {
        free(tl_buf);
        size_t cap = bytes + bytes / 4 + ALIGN;
        cap = (cap + ALIGN - 1) / ALIGN * ALIGN;
        tl_buf = aligned_alloc(ALIGN, cap);
        tl_cap = tl_buf ? cap : 0;
        pthread_once(&tl_once, tl_make_key);
        if (tl_key_ok) pthread_setspecific(tl_key, tl_buf);
    }
    return tl_buf;
}

/* ------------------------------------------------------------------------ */
/* typed kernels                                                             */
/* ------------------------------------------------------------------------ */

static int clamp_threads(int nthreads, int64_t ntiles)
{
    if (nthreads < 1) nthreads = 1;
    if ((int64_t)nthreads > ntiles) nthreads = (int)(ntiles > 0 ? ntiles : 1);
    return nthreads;
}

/*
 * Row maps.  Row r of a matrix starts at rows[r]; column n = b * C + c (0 <= c < C) of that
 * row is element  b * ld[r] + c  from there.  A plain row-major [d, N] matrix is the map
 * rows[r] = M + r * N with C = N.  The model's feature tensors need no copies either way:
 * the input degree l, [2l+1, B, C], is rows (l, m) -> x_l + m*B*C with ld = C, and the output
 * block of degree l3 with P paths, [2l3+1, B, P*C], is rows (l3, p, m) -> y + m*B*P*C + p*C
 * with ld = P*C.
 */
typedef struct {
    const void *const *rows;
    const int64_t *ld;
    int flat;          /* every ld[r] == C: a row's columns are contiguous (one piece per tile) */
} map_t;

static int is_flat(const int64_t *ld, int64_t d, int64_t C)
{
    for (int64_t r = 0; r < d; ++r)
        if (ld[r] != C) return 0;
    return 1;
}

/* The pieces of one column tile [n0, n0 + w) that are contiguous in every row: tile column
 * t..t+len-1 is column block b, c..c+len-1. */
typedef struct {
    int64_t t, len, b, c;
} seg_t;

static int make_segs(seg_t *s, int64_t n0, int64_t w, int64_t C)
{
    int ns = 0;
    int64_t t = 0, b = n0 / C, c = n0 - (n0 / C) * C;
    while (t < w) {
        int64_t len = C - c < w - t ? C - c : w - t;
        s[ns].t = t; s[ns].len = len; s[ns].b = b; s[ns].c = c;
        ++ns; t += len; ++b; c = 0;
    }
    return ns;
}

/*
 * DEFINE_KERNELS(T, SFX, TL) generates, for scalar type T with tile width TL:
 *   tile_SFX  one column tile: every output row from packed A, B tiles, written through the
 *             output map (and its squares summed into the per-column-block power)
 *   pack_SFX  copy a column tile of a mapped matrix into a zero-padded [d][TL] buffer
 *             (optionally adding gam[r] * gpow[b] * Y[r, b, c]: the signal-power gradient)
 *   run_SFX   all tiles, in parallel
 *   holovae_cg_{forward,backward}_SFX          (exported; plain row-major matrices)
 *   holovae_cg_mapped_{forward,backward}_SFX   (exported; row maps, signal power)
 */
#define DEFINE_KERNELS(T, SFX, TL)                                                          \
                                                                                            \
static inline void copy_##SFX(T *restrict d, const T *restrict s, int64_t n)                \
{                                                                                           \
    typedef T U __attribute__((vector_size(VBYTES), aligned(sizeof(T)), may_alias));        \
    enum { W = VBYTES / (int)sizeof(T) };                                                   \
    int64_t t = 0;                                                                          \
    for (; t + W <= n; t += W) *(U *)(d + t) = *(const U *)(s + t);                         \
    for (; t < n; ++t) d[t] = s[t];                                                         \
}                                                                                           \
/* copy to memory that will not be read again soon: streaming stores past the head that     \
 * aligns d (plain stores where there is no AVX) */                                        \
static inline void stream_copy_##SFX(T *restrict d, const T *restrict s, int64_t n)        \
{                                                                                           \
    typedef T U __attribute__((vector_size(VBYTES), aligned(sizeof(T)), may_alias));        \
    enum { W = VBYTES / (int)sizeof(T) };                                                   \
    int64_t t = 0;                                                                          \
    for (; t < n && ((uintptr_t)(d + t) % VBYTES) != 0; ++t) d[t] = s[t];                   \
    for (; t + W <= n; t += W) { const U v = *(const U *)(s + t); STREAM_##SFX(d + t, v); } \
    for (; t < n; ++t) d[t] = s[t];                                                         \
}                                                                                           \
/* out[r * ldo + j] = <Y[r, :], wc[j, :]> for r < rows, j < nc (nc <= 2): Y [rows, K] row-major, \
 * wc the weight's columns, contiguous [nc, K] */                                           \
static void dots_##SFX(const T *restrict Y, int64_t rows, int64_t K, const T *restrict wc,  \
                       int nc, T *restrict out, int64_t ldo)                                \
{                                                                                           \
    typedef T U __attribute__((vector_size(VBYTES), aligned(sizeof(T)), may_alias));        \
    enum { W = VBYTES / (int)sizeof(T) };                                                   \
    const T *w1 = nc > 1 ? wc + K : wc;                                                     \
    for (int64_t r = 0; r < rows; ++r) {                                                    \
        const T *y = Y + r * K;                                                             \
        U a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};                                           \
        int64_t t = 0;                                                                      \
        for (; t + 2 * W <= K; t += 2 * W) {                                                \
            const U y0 = *(const U *)(y + t), y1 = *(const U *)(y + t + W);                 \
            a0 += y0 * *(const U *)(wc + t); a1 += y1 * *(const U *)(wc + t + W);           \
            b0 += y0 * *(const U *)(w1 + t); b1 += y1 * *(const U *)(w1 + t + W);           \
        }                                                                                   \
        a0 += a1; b0 += b1;                                                                 \
        T sa = 0, sb = 0;                                                                   \
        for (int k = 0; k < W; ++k) { sa += a0[k]; sb += b0[k]; }                           \
        for (; t < K; ++t) { sa += y[t] * wc[t]; sb += y[t] * w1[t]; }                      \
        out[r * ldo] = sa;                                                                  \
        if (nc > 1) out[r * ldo + 1] = sb;                                                  \
    }                                                                                       \
}                                                                                           \
static void tile_##SFX(const plan_t *pl, const char *restrict A, const char *restrict B,    \
                       const map_t *O, const seg_t *sg, int ns, int64_t width, int nt_store, \
                       const T *pw, T *restrict pcol, int32_t o_lo, int32_t o_hi)          \
{                                                                                           \
    typedef T V __attribute__((vector_size(VBYTES), may_alias));                            \
    enum { NV = TL * (int)sizeof(T) / VBYTES };                                             \
    const int64_t *restrict out_ptr = pl->out_ptr;                                          \
    const int64_t *restrict ent_p = pl->ent_p;                                              \
    const int64_t *restrict ent_q = pl->ent_q;                                              \
    const T *restrict vals = (const T *)pl->vals;                                           \
    V pacc[NV];                                                                             \
    for (int k = 0; k < NV; ++k) pacc[k] = (V){0};                                          \
    for (int32_t o = o_lo; o < o_hi; ++o) {                                                 \
        V acc[NV], acc2[NV];                                                                \
        for (int k = 0; k < NV; ++k) { acc[k] = (V){0}; acc2[k] = (V){0}; }                 \
        int64_t e = out_ptr[o];                                                             \
        const int64_t e1 = out_ptr[o + 1];                                                  \
        if (UNROLL2) {                                                                      \
            for (; e + 1 < e1; e += 2) {                                                    \
                const T v0 = vals[e], v1 = vals[e + 1];                                     \
                const V *a0 = (const V *)(A + ent_p[e]), *b0 = (const V *)(B + ent_q[e]);   \
                const V *a1 = (const V *)(A + ent_p[e + 1]);                                \
                const V *b1 = (const V *)(B + ent_q[e + 1]);                                \
                for (int k = 0; k < NV; ++k) {                                              \
                    acc[k] += (v0 * a0[k]) * b0[k];                                         \
                    acc2[k] += (v1 * a1[k]) * b1[k];                                        \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
        for (; e < e1; ++e) {                                                               \
            const T v = vals[e];                                                            \
            const V *a = (const V *)(A + ent_p[e]), *b = (const V *)(B + ent_q[e]);         \
            for (int k = 0; k < NV; ++k) acc[k] += (v * a[k]) * b[k];                       \
        }                                                                                   \
        V tmp[NV];                                                                          \
        for (int k = 0; k < NV; ++k) tmp[k] = acc[k] + acc2[k];                             \
        if (pw) {   /* squares per tile column; summed per column block once per tile */    \
            const T w = pw[o];                                                              \
            for (int k = 0; k < NV; ++k) pacc[k] += w * (tmp[k] * tmp[k]);                  \
        }                                                                                   \
        const T *tv = (const T *)tmp;                                                       \
        T *y = (T *)O->rows[o];                                                             \
        const int64_t ld = O->ld[o];                                                        \
        if (O->flat) {   /* one contiguous piece: the tile's columns n0.. of the row */     \
            T *yy = y + sg[0].b * ld + sg[0].c;                                             \
            if (width == TL && nt_store && ((uintptr_t)yy % VBYTES) == 0) {                 \
                for (int k = 0; k < NV; ++k) STREAM_##SFX(yy + k * (VBYTES / (int)sizeof(T)), tmp[k]); \
            } else {                                                                        \
                copy_##SFX(yy, tv, width);                                                  \
            }                                                                               \
        } else {                                                                            \
            for (int s = 0; s < ns; ++s)                                                    \
                copy_##SFX(y + sg[s].b * ld + sg[s].c, tv + sg[s].t, sg[s].len);            \
        }                                                                                   \
    }                                                                                       \
    if (pw) {                                                                               \
        const T *pv = (const T *)pacc;                                                      \
        for (int s = 0; s < ns; ++s) {                                                      \
            T ss = 0;                                                                       \
            for (int64_t t = sg[s].t; t < sg[s].t + sg[s].len; ++t) ss += pv[t];            \
            pcol[sg[s].b] += ss;                                                            \
        }                                                                                   \
    }                                                                                       \
}                                                                                           \
                                                                                            \
/* the backward of one column tile, pair by pair (see the header), into the zeroed tile     \
 * buffer D [d_in][TL], then D written through the output map */                          \
static void tilebw_##SFX(const plan_t *pl, const char *restrict A, const char *restrict B,  \
                         T *restrict D, int64_t d_in, const map_t *O, const seg_t *sg,      \
                         int ns, int64_t width)                                             \
{                                                                                           \
    typedef T V __attribute__((vector_size(VBYTES), may_alias));                            \
    enum { NV = TL * (int)sizeof(T) / VBYTES };                                             \
    const int64_t *restrict gptr = pl->out_ptr;                                             \
    const int64_t *restrict ent_p = pl->ent_p;                                              \
    const int64_t *restrict ga = pl->grp_a, *restrict gb = pl->grp_b;                       \
    const T *restrict vals = (const T *)pl->vals;                                           \
    char *restrict Dc = (char *)D;                                                          \
    for (int64_t t = 0; t < d_in * TL; ++t) D[t] = (T)0;                                    \
    V da[NV] = {0};         /* dX[a] of the current run of pairs with the same a */      \
    int64_t cur = -1;                                                                       \
    for (int32_t g = 0; g < pl->n_out; ++g) {                                               \
        if (ga[g] != cur) {                                                                 \
            if (cur >= 0) { V *o = (V *)(Dc + cur); for (int k = 0; k < NV; ++k) o[k] += da[k]; } \
            cur = ga[g];                                                                    \
            for (int k = 0; k < NV; ++k) da[k] = (V){0};                                    \
        }                                                                                   \
        V acc[NV];                                                                          \
        for (int k = 0; k < NV; ++k) acc[k] = (V){0};                                       \
        for (int64_t e = gptr[g]; e < gptr[g + 1]; ++e) {                                   \
            const T v = vals[e];                                                            \
            const V *a = (const V *)(A + ent_p[e]);                                         \
            for (int k = 0; k < NV; ++k) acc[k] += v * a[k];                                \
        }                                                                                   \
        const V *xb = (const V *)(B + gb[g]);                                               \
        for (int k = 0; k < NV; ++k) da[k] += acc[k] * xb[k];                               \
        if (ga[g] != gb[g]) {                                                               \
            V *db = (V *)(Dc + gb[g]);                                                      \
            const V *xa = (const V *)(B + ga[g]);                                           \
            for (int k = 0; k < NV; ++k) db[k] += acc[k] * xa[k];                           \
        }                                                                                   \
    }                                                                                       \
    if (cur >= 0) { V *o = (V *)(Dc + cur); for (int k = 0; k < NV; ++k) o[k] += da[k]; }   \
    for (int64_t r = 0; r < d_in; ++r) {                                                    \
        T *y = (T *)O->rows[r];                                                             \
        const int64_t ld = O->ld[r];                                                        \
        const T *dr = D + r * TL;                                                           \
        if (O->flat) copy_##SFX(y + sg[0].b * ld + sg[0].c, dr, width);                     \
        else for (int s = 0; s < ns; ++s)                                                   \
            copy_##SFX(y + sg[s].b * ld + sg[s].c, dr + sg[s].t, sg[s].len);                \
    }                                                                                       \
}                                                                                           \
                                                                                            \
static void pack_##SFX(T *restrict P, const map_t *M, int64_t d, const seg_t *sg, int ns,   \
                       int64_t w, const map_t *Yg, const T *gam, const T *gpow)             \
{                                                                                           \
    for (int64_t r = 0; r < d; ++r) {                                                       \
        T *dst = P + r * TL;                                                                \
        const T *src = (const T *)M->rows[r];                                               \
        const int64_t ld = M->ld[r];                                                        \
        if (M->flat) copy_##SFX(dst, src + sg[0].b * ld + sg[0].c, w);                      \
        else for (int s = 0; s < ns; ++s)                                                   \
            copy_##SFX(dst + sg[s].t, src + sg[s].b * ld + sg[s].c, sg[s].len);             \
        if (Yg && gam[r] != (T)0) {                                                         \
            const T *yr = (const T *)Yg->rows[r];                                           \
            const int64_t ly = Yg->ld[r];                                                   \
            for (int s = 0; s < ns; ++s) {                                                  \
                const T f = gam[r] * gpow[sg[s].b];                                         \
                const T *restrict ys = yr + sg[s].b * ly + sg[s].c;                         \
                T *restrict ds = dst + sg[s].t;                                             \
                for (int64_t t = 0; t < sg[s].len; ++t) ds[t] += f * ys[t];                 \
            }                                                                               \
        }                                                                                   \
        for (int64_t t = w; t < TL; ++t) dst[t] = (T)0;                                     \
    }                                                                                       \
}                                                                                           \
                                                                                            \
static int run_##SFX(const plan_t *pl, const map_t *A, int64_t dA, const map_t *B,          \
                     int64_t dB, int same, const map_t *O, int64_t N, int64_t C,            \
                     int nthreads, const map_t *Yg, const T *gam, const T *gpow,            \
                     const T *pw, T *power)                                                 \
{                                                                                           \
    int rc = 0;                                                                             \
    const int64_t ntiles = (N + TL - 1) / TL;                                               \
    const int nt = clamp_threads(nthreads, ntiles);                                         \
    const int nts = (int64_t)pl->n_out * N * (int64_t)sizeof(T) >= NT_MIN_BYTES;            \
    const int64_t nb = N / C;                                                               \
    T *parts = NULL;                                                                        \
    if (power) {                                                                            \
        parts = calloc((size_t)nt * (size_t)nb, sizeof(T));                                 \
        if (!parts) return -2;                                                              \
    }                                                                                       \
    _Pragma("omp parallel num_threads(nt)")                                                 \
    {                                                                                       \
        const size_t rowsB = (size_t)dB, rowsA = same ? 0 : (size_t)dA;                     \
        const size_t rowsD = pl->kind == 1 ? (size_t)dB : 0;                                \
        T *bufB = (T *)scratch((rowsA + rowsB + rowsD) * TL * sizeof(T));                   \
        T *bufA = bufB ? (same ? bufB : bufB + rowsB * TL) : NULL;                          \
        T *bufD = bufB ? bufB + (rowsA + rowsB) * TL : NULL;                                \
        T *pcol = parts ? parts + (size_t)omp_get_thread_num() * (size_t)nb : NULL;         \
        seg_t sg[TL + 1];                                                                   \
        if (!bufB) {                                                                        \
            _Pragma("omp atomic write")                                                     \
            rc = -2;                                                                        \
        }                                                                                   \
        _Pragma("omp for schedule(static)")                                                 \
        for (int64_t tile = 0; tile < ntiles; ++tile) {                                     \
            if (!bufB) continue;                                                            \
            const int64_t n0 = tile * TL;                                                   \
            const int64_t w = (N - n0) < TL ? (N - n0) : TL;                                \
            const int ns = make_segs(sg, n0, w, C);                                         \
            pack_##SFX(bufB, B, dB, sg, ns, w, NULL, NULL, NULL);                           \
            if (!same) pack_##SFX(bufA, A, dA, sg, ns, w, Yg, gam, gpow);                   \
            if (pl->kind == 1)                                                              \
                tilebw_##SFX(pl, (const char *)bufA, (const char *)bufB, bufD, dB, O, sg, ns, w); \
            else                                                                            \
                tile_##SFX(pl, (const char *)bufA, (const char *)bufB, O, sg, ns, w, nts,   \
                           power ? pw : NULL, pcol, 0, pl->n_out);                          \
        }                                                                                   \
        STREAM_FENCE();                                                                     \
    }                                                                                       \
    if (parts) {   /* in thread order: the same sums on every run */                        \
        for (int64_t b = 0; b < nb; ++b) {                                                  \
            T s = 0;                                                                        \
            for (int k = 0; k < nt; ++k) s += parts[(size_t)k * (size_t)nb + (size_t)b];    \
            power[b] = s;                                                                   \
        }                                                                                   \
        free(parts);                                                                        \
    }                                                                                       \
    return rc;                                                                              \
}                                                                                           \
                                                                                            \
/* row map of a plain row-major [d, N] matrix (C = N): one malloc'd block, free() it */     \
static map_t *plain_map_##SFX(const T *M, int64_t d, int64_t N)                             \
{                                                                                           \
    map_t *m = malloc(sizeof(map_t) + (size_t)d * (sizeof(void *) + sizeof(int64_t)));      \
    if (!m) return NULL;                                                                    \
    const void **rows = (const void **)(m + 1);                                             \
    int64_t *ld = (int64_t *)(rows + d);                                                    \
    for (int64_t r = 0; r < d; ++r) { rows[r] = M + r * N; ld[r] = N; }                     \
    m->rows = rows; m->ld = ld; m->flat = 1;                                                \
    return m;                                                                               \
}                                                                                           \
                                                                                            \
int holovae_cg_forward_##SFX(const T *X, int64_t d_in, int64_t N,                           \
                             const void *row, const void *ii, const void *jj, int idx64,    \
                             const T *val, int64_t nnz, T *Y, int64_t d_out, int nthreads)  \
{                                                                                           \
    centry_t *c;                                                                            \
    if (N < 0) return -3;                                                                   \
    int rc = cache_get(&c, 0, (int)sizeof(T), nnz, d_in, d_out, row, ii, jj, idx64, val,    \
                       (int64_t)TL * (int64_t)sizeof(T));                                   \
    if (rc) return rc;                                                                      \
    if (N > 0) {                                                                            \
        map_t *mx = plain_map_##SFX(X, d_in, N), *my = plain_map_##SFX(Y, d_out, N);        \
        rc = (mx && my) ? run_##SFX(&c->plan, mx, d_in, mx, d_in, 1, my, N, N, nthreads,    \
                                    NULL, NULL, NULL, NULL, NULL) : -2;                     \
        free(mx); free(my);                                                                 \
    }                                                                                       \
    cache_release(c);                                                                       \
    return rc;                                                                              \
}                                                                                           \
                                                                                            \
int holovae_cg_backward_##SFX(const T *dY, int64_t d_out, const T *X, int64_t d_in,         \
                              int64_t N, const void *row, const void *ii, const void *jj,   \
                              int idx64, const T *val, int64_t nnz, T *dX, int nthreads)    \
{                                                                                           \
    centry_t *c;                                                                            \
    if (N < 0) return -3;                                                                   \
    int rc = cache_get(&c, 1, (int)sizeof(T), nnz, d_in, d_out, row, ii, jj, idx64, val,    \
                       (int64_t)TL * (int64_t)sizeof(T));                                   \
    if (rc) return rc;                                                                      \
    if (N > 0) {                                                                            \
        map_t *mdy = plain_map_##SFX(dY, d_out, N), *mx = plain_map_##SFX(X, d_in, N);      \
        map_t *mdx = plain_map_##SFX(dX, d_in, N);                                          \
        rc = (mdy && mx && mdx) ? run_##SFX(&c->plan, mdy, d_out, mx, d_in, 0, mdx, N, N,   \
                                            nthreads, NULL, NULL, NULL, NULL, NULL) : -2;   \
        free(mdy); free(mx); free(mdx);                                                     \
    }                                                                                       \
    cache_release(c);                                                                       \
    return rc;                                                                              \
}                                                                                           \
                                                                                            \
/* Y = CG(X) through row maps; power[b] = sum_o pw[o] * sum_c Y[o, b, c]^2 when power is    \
 * not NULL (pw [d_out], power [N / C]). */                                                 \
int holovae_cg_mapped_forward_##SFX(const void *const *xrows, const int64_t *xld,           \
                                    int64_t d_in, int64_t N, int64_t C,                     \
                                    const void *row, const void *ii, const void *jj,        \
                                    int idx64, const T *val, int64_t nnz,                   \
                                    const void *const *yrows, const int64_t *yld,           \
                                    int64_t d_out, const T *pw, T *power, int nthreads)     \
{                                                                                           \
    centry_t *c;                                                                            \
    if (N < 0 || C < 1 || N % C != 0 || (power && !pw)) return -3;                          \
    int rc = cache_get(&c, 0, (int)sizeof(T), nnz, d_in, d_out, row, ii, jj, idx64, val,    \
                       (int64_t)TL * (int64_t)sizeof(T));                                   \
    if (rc) return rc;                                                                      \
    const map_t mx = {xrows, xld, is_flat(xld, d_in, C)};                                   \
    const map_t my = {yrows, yld, is_flat(yld, d_out, C)};                                  \
    if (N > 0) rc = run_##SFX(&c->plan, &mx, d_in, &mx, d_in, 1, &my, N, C, nthreads,       \
                              NULL, NULL, NULL, pw, power);                                 \
    cache_release(c);                                                                       \
    return rc;                                                                              \
}                                                                                           \
                                                                                            \
/* dX = CG backward of (dY + gam[o] * gpow[b] * Y) through row maps (yrows share dY's ld;   \
 * yrows/gam/gpow NULL: plain dY). */                                                       \
int holovae_cg_mapped_backward_##SFX(const void *const *dyrows, const int64_t *dyld,        \
                                     const void *const *yrows, const T *gam, const T *gpow, \
                                     int64_t d_out,                                         \
                                     const void *const *xrows, const int64_t *xld,          \
                                     int64_t d_in, int64_t N, int64_t C,                    \
                                     const void *row, const void *ii, const void *jj,       \
                                     int idx64, const T *val, int64_t nnz,                  \
                                     const void *const *dxrows, const int64_t *dxld,        \
                                     int nthreads)                                          \
{                                                                                           \
    centry_t *c;                                                                            \
    if (N < 0 || C < 1 || N % C != 0 || (yrows && (!gam || !gpow))) return -3;              \
    int rc = cache_get(&c, 1, (int)sizeof(T), nnz, d_in, d_out, row, ii, jj, idx64, val,    \
                       (int64_t)TL * (int64_t)sizeof(T));                                   \
    if (rc) return rc;                                                                      \
    const int fy = is_flat(dyld, d_out, C);                                                 \
    const map_t mdy = {dyrows, dyld, fy}, my = {yrows, dyld, fy};                           \
    const map_t mx = {xrows, xld, is_flat(xld, d_in, C)};                                   \
    const map_t mdx = {dxrows, dxld, is_flat(dxld, d_in, C)};                               \
    if (N > 0) rc = run_##SFX(&c->plan, &mdy, d_out, &mx, d_in, 0, &mdx, N, C, nthreads,    \
                              yrows ? &my : NULL, gam, gpow, NULL, NULL);                   \
    cache_release(c);                                                                       \
    return rc;                                                                              \
}


/* ------------------------------------------------------------------------ */
/* the CG square and the per-degree linear in one pass (inference)           */
/* ------------------------------------------------------------------------ */

/* Fortran BLAS gemm (column-major; LP64 integers), as MKL and OpenBLAS export it */
typedef void (*gemm_f32_t)(const char *, const char *, const int *, const int *, const int *,
                           const float *, const float *, const int *, const float *,
                           const int *, const float *, float *, const int *);
typedef void (*gemm_f64_t)(const char *, const char *, const int *, const int *, const int *,
                           const double *, const double *, const int *, const double *,
                           const int *, const double *, double *, const int *);

static size_t round_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

/* The forward gemm's last c_out % 8 output channels, when there are one or two of them past a
 * multiple of 8 (the protein model's 50 = 48 + 2): MKL's kernel pays for a ragged edge of its
 * tile as for a whole one (single-threaded, 182 x 500 rows: 48 channels 254 us, 50 channels
 * 303 us), so those channels are dot products of our own (dots_SFX) and the gemm makes 48. */
static int64_t gemm_edge(int64_t c_out)
{
    const int64_t r = c_out % 8;
    return c_out > 8 && r <= 2 ? r : 0;
}

/* The chunks of samples of the linear entry points: at most `chunk` samples each, their count
 * a multiple of the thread count where there are enough samples, and their sizes within one of
 * each other (chunk ch is samples [ch*nb/n, (ch+1)*nb/n)), so that round-robin chunks give
 * every thread the same work: 512 samples in chunks of 18 were 29 chunks, 270 samples for one
 * thread and 242 for the other; now 30 chunks of 17 or 18, 256 each. */
static int64_t balanced_chunks(int64_t nb, int64_t chunk, int nthreads)
{
    int64_t n = (nb + chunk - 1) / chunk;
    if (nthreads > 1) n = (n + nthreads - 1) / nthreads * nthreads;
    return n < nb ? n : nb;
}

/*
 * H[h_row0[b] + m, s, :] = sum_{p, c} Y_b[m, s, p*C + c] * W_b[p*C + c, :] for every output
 * block b (Y_b = the CG square's rows of b, [d_b, B, k_b*C]), and the signal power as the
 * mapped forward sums it, without Y ever leaving the cache: the samples are cut into chunks
 * of `chunk`; for each chunk and block, the block's rows are computed into a thread-local
 * [d_b][chunk][k_b*C] buffer and multiplied by W_b there (one gemm call, single-threaded:
 * each thread runs its own chunks).  Two passes over DRAM (the CG output written, then read
 * by a multi-threaded gemm) become none, and the gemms run on cache-resident operands.
 * Blocks with k_b == 0 give zero rows.  W_b: [k_b*C, c_out] row-major; H [*, B, c_out].
 * tstore (training; NULL for inference): per block, Y_b [d_b, B, k_b*C], which the backward
 * needs; each chunk's rows are copied there from the cache after they are made (streaming
 * stores when the square is large), and the gemm still reads them from the cache.
 */
/* The output blocks of the linear entry points (b: d_b rows of k_b paths, weight w[b] where
 * k_b > 0): checks them against the chunk; sets the square's rows d_out, the widest block's
 * rows * channels t_max and the most rows of one degree d_max; then cuts the chunk so that
 * every thread gets work (nb > 0 samples).  0 ok, -3 bad argument. */
static int linear_blocks(int64_t nblk, const int64_t *blk_d, const int64_t *blk_k,
                         const void *const *w, int64_t C, int64_t nb, int nthreads,
                         int64_t *chunk, int64_t *d_out, int64_t *t_max, int64_t *d_max)
{
    *d_out = *t_max = *d_max = 0;
    for (int64_t b = 0; b < nblk; ++b) {
        if (blk_d[b] < 1 || blk_k[b] < 0 || (blk_k[b] > 0 && !w[b])) return -3;
        if (blk_d[b] * *chunk > INT32_MAX || blk_k[b] * C > INT32_MAX) return -3;
        *d_out += blk_d[b] * blk_k[b];
        if (blk_d[b] * blk_k[b] * C > *t_max) *t_max = blk_d[b] * blk_k[b] * C;
        if (blk_d[b] > *d_max) *d_max = blk_d[b];
    }
    if (nb == 0) return 0;
    if (*d_out == 0) return -3;
    if (nthreads > 1 && *chunk > (nb + nthreads - 1) / nthreads)   /* work for every thread */
        *chunk = (nb + nthreads - 1) / nthreads;
    if (*chunk > nb) *chunk = nb;
    return 0;
}

#define DEFINE_LINEAR(T, SFX, TL)                                                           \
int holovae_cg_linear_forward_##SFX(const void *const *xrows, const int64_t *xld,           \
                                    int64_t d_in, int64_t N, int64_t C,                     \
                                    const void *row, const void *ii, const void *jj,        \
                                    int idx64, const T *val, int64_t nnz, int64_t nblk,     \
                                    const int64_t *blk_d, const int64_t *blk_k,             \
                                    const void *const *w, int64_t c_out, T *H,              \
                                    const int64_t *h_row0, const T *pw, T *power,           \
                                    void *const *tstore, int64_t chunk, void *gemm,         \
                                    void *gemm_threads, int nthreads)                       \
{                                                                                           \
    if (N < 0 || C < 1 || N % C != 0 || !pw || !power || !gemm || chunk < 1 || c_out < 1    \
        || c_out > INT32_MAX || nblk < 1)                                                   \
        return -3;                                                                          \
    const int64_t nb = N / C;                                                               \
    int64_t d_out, t_rows, y_rows;                                                          \
    int rc = linear_blocks(nblk, blk_d, blk_k, w, C, nb, nthreads, &chunk, &d_out, &t_rows, &y_rows); \
    if (rc || nb == 0) return rc;                                                           \
    centry_t *c;                                                                            \
    rc = cache_get(&c, 0, (int)sizeof(T), nnz, d_in, d_out, row, ii, jj, idx64, val,    \
                       (int64_t)TL * (int64_t)sizeof(T));                                   \
    if (rc) return rc;                                                                      \
    const plan_t *pl = &c->plan;                                                            \
    const map_t mx = {xrows, xld, is_flat(xld, d_in, C)};                                   \
    const int64_t nchunks = balanced_chunks(nb, chunk, nthreads);                           \
    const int64_t ntile = (chunk * C + TL - 1) / TL;                                        \
    const int nt = clamp_threads(nthreads, nchunks);                                        \
    const int nts = d_out * N * (int64_t)sizeof(T) >= NT_MIN_BYTES;                         \
    T *parts = calloc((size_t)nt * (size_t)nb, sizeof(T));                                  \
    if (!parts) { cache_release(c); return -2; }                                            \
    const int64_t c_edge = gemm_edge(c_out), c_main = c_out - c_edge;                       \
    T *wcols = NULL;   /* per block, the weight's edge columns, contiguous [c_edge, K_b] */    \
    if (c_edge) {                                                                           \
        int64_t kt = 0;                                                                     \
        for (int64_t b = 0; b < nblk; ++b) kt += blk_k[b] * C;                              \
        wcols = malloc((size_t)(kt * c_edge > 0 ? kt * c_edge : 1) * sizeof(T));            \
        if (!wcols) { free(parts); cache_release(c); return -2; }                           \
        T *wp = wcols;                                                                      \
        for (int64_t b = 0; b < nblk; ++b) {                                                \
            const int64_t K = blk_k[b] * C;                                                 \
            for (int64_t j = 0; j < c_edge; ++j)                                            \
                for (int64_t r = 0; r < K; ++r)                                             \
                    wp[j * K + r] = ((const T *)w[b])[r * c_out + c_main + j];              \
            wp += c_edge * K;                                                               \
        }                                                                                   \
    }                                                                                       \
    const size_t s_x = round_up((size_t)ntile * (size_t)d_in * TL * sizeof(T));             \
    const size_t s_t = round_up((size_t)t_rows * (size_t)chunk * sizeof(T));                \
    const size_t s_y = round_up((size_t)y_rows * (size_t)chunk * (size_t)c_out * sizeof(T)); \
    const size_t s_r = round_up((size_t)d_out * sizeof(void *));                            \
    const size_t s_l = round_up((size_t)d_out * sizeof(int64_t));                           \
    const size_t s_s = round_up((size_t)ntile * (TL + 1) * sizeof(seg_t));                  \
    const size_t s_n = round_up((size_t)ntile * sizeof(int));                               \
    const T one = 1, zero = 0;                                                              \
    _Pragma("omp parallel num_threads(nt)")                                                 \
    {                                                                                       \
        char *base = scratch(s_x + s_t + s_y + s_r + s_l + s_s + s_n);                      \
        T *bufX = (T *)base, *bufT = (T *)(base + s_x), *bufY = (T *)(base + s_x + s_t);    \
        const void **trows = (const void **)(base + s_x + s_t + s_y);                       \
        int64_t *tld = (int64_t *)(base + s_x + s_t + s_y + s_r);                           \
        seg_t *segs = (seg_t *)(base + s_x + s_t + s_y + s_r + s_l);                        \
        int *nsegs = (int *)(base + s_x + s_t + s_y + s_r + s_l + s_s);                     \
        T *pcol = parts + (size_t)omp_get_thread_num() * (size_t)nb;                        \
        /* one gemm thread per kernel thread: a team of one is not "in parallel" for the     \
         * BLAS, which would start a team of its own inside this one for every call */       \
        const int prev = gemm_threads ? ((int (*)(int))gemm_threads)(1) : 0;                \
        if (!base) {                                                                        \
            _Pragma("omp atomic write")                                                     \
            rc = -2;                                                                        \
        }                                                                                   \
        _Pragma("omp for schedule(dynamic, 1)")                                             \
        for (int64_t ch = 0; ch < nchunks; ++ch) {                                          \
            if (!base) continue;                                                            \
            const int64_t b0 = ch * nb / nchunks;                                           \
            const int64_t ns_ = (ch + 1) * nb / nchunks - b0;                               \
            const int64_t n_end = (b0 + ns_) * C;                                           \
            const int64_t nti = (ns_ * C + TL - 1) / TL;                                    \
            for (int64_t t = 0; t < nti; ++t) {   /* pack the chunk's input once */         \
                const int64_t n0 = b0 * C + t * TL;                                         \
                const int64_t wd = (n_end - n0) < TL ? (n_end - n0) : TL;                   \
                seg_t *sg = segs + t * (TL + 1);                                            \
                nsegs[t] = make_segs(sg, n0, wd, C);                                        \
                pack_##SFX(bufX + t * d_in * TL, &mx, d_in, sg, nsegs[t], wd, NULL, NULL, NULL); \
                for (int k = 0; k < nsegs[t]; ++k) sg[k].b -= b0;   /* chunk-local samples */ \
            }                                                                               \
            int64_t o0 = 0;                                                                 \
            const T *wc = wcols;                                                            \
            for (int64_t b = 0; b < nblk; ++b) {                                            \
                const int64_t d = blk_d[b], kb = blk_k[b], K = kb * C;                      \
                T *h0 = H + (h_row0[b] * nb + b0) * c_out;                                  \
                if (kb == 0) {                                                              \
                    for (int64_t m = 0; m < d; ++m)                                         \
                        memset(h0 + m * nb * c_out, 0, (size_t)(ns_ * c_out) * sizeof(T));  \
                    continue;                                                               \
                }                                                                           \
                for (int64_t m = 0; m < d; ++m)   /* rows (m, p) of the chunk buffer */     \
                    for (int64_t p = 0; p < kb; ++p) {                                      \
                        trows[o0 + m * kb + p] = bufT + m * ns_ * K + p * C;                \
                        tld[o0 + m * kb + p] = K;                                           \
                    }                                                                       \
                const map_t mt = {trows, tld, K == C};                                      \
                for (int64_t t = 0; t < nti; ++t) {                                         \
                    const int64_t n0 = b0 * C + t * TL;                                     \
                    const int64_t wd = (n_end - n0) < TL ? (n_end - n0) : TL;               \
                    const char *xa = (const char *)(bufX + t * d_in * TL);                  \
                    tile_##SFX(pl, xa, xa, &mt, segs + t * (TL + 1), nsegs[t], wd, 0, pw,  \
                               pcol + b0, (int32_t)o0, (int32_t)(o0 + d * kb));             \
                }                                                                           \
                if (tstore) {   /* training: the square is kept for the backward */         \
                    T *t0 = (T *)tstore[b] + b0 * K;                                        \
                    for (int64_t m = 0; m < d; ++m) {                                       \
                        if (nts) stream_copy_##SFX(t0 + m * nb * K, bufT + m * ns_ * K, ns_ * K); \
                        else copy_##SFX(t0 + m * nb * K, bufT + m * ns_ * K, ns_ * K);      \
                    }                                                                       \
                }                                                                           \
                const int gn = (int)c_main, gm = (int)(d * ns_), gk = (int)K, ld = (int)c_out; \
                ((gemm_##SFX##_t)gemm)("N", "N", &gn, &gm, &gk, &one, (const T *)w[b], &ld, \
                                       bufT, &gk, &zero, bufY, &ld);                        \
                if (c_edge) {                                                               \
                    dots_##SFX(bufT, d * ns_, K, wc, (int)c_edge, bufY + c_main, c_out);    \
                    wc += c_edge * K;                                                       \
                }                                                                           \
                for (int64_t m = 0; m < d; ++m)                                             \
                    copy_##SFX(h0 + m * nb * c_out, bufY + m * ns_ * c_out, ns_ * c_out);   \
                o0 += d * kb;                                                               \
            }                                                                               \
        }                                                                                   \
        if (gemm_threads) ((int (*)(int))gemm_threads)(prev);                               \
        STREAM_FENCE();                                                                     \
    }                                                                                       \
    for (int64_t b = 0; b < nb; ++b) {   /* in thread order: the same sums on every run */  \
        T s = 0;                                                                            \
        for (int k = 0; k < nt; ++k) s += parts[(size_t)k * (size_t)nb + (size_t)b];        \
        power[b] = s;                                                                       \
    }                                                                                       \
    free(parts);                                                                            \
    free(wcols);                                                                            \
    cache_release(c);                                                                       \
    return rc;                                                                              \
}


/*
 * The backward of holovae_cg_linear_forward's computation for training:
 *   dX = CG backward of (dY_b + gam[b] * gpow[s] * Y_b[m, s, :]),  dY_b = dH_b @ W_b^T,
 *   dW_b = Y_b^T dH_b (into dwt[b], transposed: [c_out, k_b*C]; dwt NULL: not wanted),
 * dH [*, B, c_out] stacked like H, Y_b = tstore[b] [d_b, B, k_b*C] (the square the training
 * forward kept; NULL when neither the power's gradient nor dW is wanted).  Chunk by chunk of
 * samples, in a thread-local buffer: Y_b's rows are read once, for dW_b's gemm (accumulated per
 * thread) and, scaled, as the start of dY_b's gemm (beta = 1), so the power's gradient costs no
 * pass of its own; the pair-grouped backward then consumes dY where it was made.  Chunks go to
 * the threads round-robin (static, 1), so dW's sums have the same order on every run with a
 * thread count (a resumed training run must give the same bits); measured on the protein
 * L = 6 block, round-robin is as fast as dynamic scheduling and ~8% faster than halves.
 */
#define DEFINE_LINEAR_BW(T, SFX, TL)                                                        \
int holovae_cg_linear_backward_##SFX(const T *dH, const int64_t *h_row0, int64_t c_out,     \
                                     const void *const *w, int64_t nblk,                    \
                                     const int64_t *blk_d, const int64_t *blk_k,            \
                                     const void *const *tstore, const T *gam, const T *gpow, \
                                     void *const *dwt,                                      \
                                     const void *const *xrows, const int64_t *xld,          \
                                     int64_t d_in, int64_t N, int64_t C,                    \
                                     const void *row, const void *ii, const void *jj,       \
                                     int idx64, const T *val, int64_t nnz,                  \
                                     const void *const *dxrows, int64_t chunk, void *gemm,  \
                                     void *gemm_threads, int nthreads)                      \
{                                                                                           \
    if (N < 0 || C < 1 || N % C != 0 || !gemm || chunk < 1 || c_out < 1 || c_out > INT32_MAX \
        || nblk < 1 || ((gpow || dwt) && !tstore) || (gpow && !gam))                        \
        return -3;                                                                          \
    const int64_t nb = N / C;                                                               \
    int64_t d_out, t_max, h_rows;                                                           \
    int rc = linear_blocks(nblk, blk_d, blk_k, w, C, nb, nthreads, &chunk, &d_out, &t_max, &h_rows); \
    if (rc) return rc;                                                                      \
    (void)t_max;                                                                            \
    int64_t n_acc = 0;   /* one thread's dW accumulators: sum_b c_out * k_b * C */          \
    for (int64_t b = 0; b < nblk; ++b) {                                                    \
        if (blk_k[b] == 0) continue;                                                        \
        if (dwt && !dwt[b]) return -3;                                                      \
        if (tstore && !tstore[b]) return -3;                                                \
        n_acc += c_out * blk_k[b] * C;                                                      \
    }                                                                                       \
    if (dwt && nb == 0)                                                                     \
        for (int64_t b = 0; b < nblk; ++b)                                                  \
            if (blk_k[b]) memset(dwt[b], 0, (size_t)(c_out * blk_k[b] * C) * sizeof(T));    \
    if (nb == 0) return 0;                                                                  \
    centry_t *c;                                                                            \
    rc = cache_get(&c, 1, (int)sizeof(T), nnz, d_in, d_out, row, ii, jj, idx64, val,        \
                   (int64_t)TL * (int64_t)sizeof(T));                                       \
    if (rc) return rc;                                                                      \
    const plan_t *pl = &c->plan;                                                            \
    const map_t mx = {xrows, xld, is_flat(xld, d_in, C)};                                   \
    const map_t mdx = {dxrows, xld, mx.flat};                                               \
    const int64_t nchunks = balanced_chunks(nb, chunk, nthreads);                           \
    const int nt = clamp_threads(nthreads, nchunks);                                        \
    T *accs[nt];   /* each thread's dW accumulators (in its scratch: no page faults) */     \
    const size_t s_h = round_up((size_t)h_rows * (size_t)chunk * (size_t)c_out * sizeof(T)); \
    const size_t s_t = round_up((size_t)d_out * (size_t)C * (size_t)chunk * sizeof(T));     \
    const size_t s_a = round_up((size_t)d_out * TL * sizeof(T));                            \
    const size_t s_b = round_up((size_t)d_in * TL * sizeof(T));                             \
    const size_t s_r = round_up((size_t)d_out * sizeof(void *));                            \
    const size_t s_l = round_up((size_t)d_out * sizeof(int64_t));                           \
    const size_t s_w = dwt ? round_up((size_t)n_acc * sizeof(T)) : 0;                       \
    const T one = 1, zero = 0;                                                              \
    _Pragma("omp parallel num_threads(nt)")                                                 \
    {                                                                                       \
        char *base = scratch(s_h + s_t + s_a + 2 * s_b + s_r + s_l + s_w);                  \
        T *bufH = (T *)base, *bufT = (T *)(base + s_h), *bufA = (T *)(base + s_h + s_t);    \
        T *bufB = (T *)(base + s_h + s_t + s_a), *bufD = (T *)(base + s_h + s_t + s_a + s_b); \
        const void **trows = (const void **)(base + s_h + s_t + s_a + 2 * s_b);             \
        int64_t *tld = (int64_t *)(base + s_h + s_t + s_a + 2 * s_b + s_r);                 \
        T *my_acc = dwt && base ? (T *)(base + s_h + s_t + s_a + 2 * s_b + s_r + s_l) : NULL; \
        accs[omp_get_thread_num()] = my_acc;                                                \
        if (my_acc) memset(my_acc, 0, (size_t)n_acc * sizeof(T));                           \
        const int prev = gemm_threads ? ((int (*)(int))gemm_threads)(1) : 0;                \
        seg_t sg[TL + 1], sl[TL + 1];                                                       \
        if (!base) {                                                                        \
            _Pragma("omp atomic write")                                                     \
            rc = -2;                                                                        \
        }                                                                                   \
        _Pragma("omp for schedule(static, 1)")                                              \
        for (int64_t ch = 0; ch < nchunks; ++ch) {                                          \
            if (!base) continue;                                                            \
            const int64_t b0 = ch * nb / nchunks;                                           \
            const int64_t ns_ = (ch + 1) * nb / nchunks - b0;                               \
            const int64_t n_end = (b0 + ns_) * C;                                           \
            T *tb = bufT, *ab = my_acc;                                                     \
            for (int64_t b = 0, o = 0; b < nblk; ++b) {                                     \
                const int64_t d = blk_d[b], kb = blk_k[b], K = kb * C;                      \
                if (kb == 0) continue;                                                      \
                const T *h0 = dH + (h_row0[b] * nb + b0) * c_out;                           \
                for (int64_t m = 0; m < d; ++m)                                             \
                    copy_##SFX(bufH + m * ns_ * c_out, h0 + m * nb * c_out, ns_ * c_out);   \
                const int gm = (int)K, gn = (int)(d * ns_), gk = (int)c_out;                \
                const T *beta = &zero;                                                      \
                if (gpow || ab) {   /* the chunk's Y_b rows (m, s) */                       \
                    const T *t0 = (const T *)tstore[b] + b0 * K;                            \
                    for (int64_t m = 0; m < d; ++m)                                         \
                        copy_##SFX(tb + m * ns_ * K, t0 + m * nb * K, ns_ * K);             \
                    if (ab) {   /* dW_b^T [c_out, K] += dH_b^T Y_b (column-major: K x c_out) */ \
                        ((gemm_##SFX##_t)gemm)("N", "T", &gm, &gk, &gn, &one, tb, &gm, bufH, \
                                               &gk, &one, ab, &gm);                         \
                        ab += c_out * K;                                                    \
                    }                                                                       \
                    if (gpow) {   /* dY starts as the power's gradient: gam * gpow[s] * Y */ \
                        for (int64_t m = 0; m < d; ++m)                                     \
                            for (int64_t s = 0; s < ns_; ++s) {                             \
                                const T f = gam[b] * gpow[b0 + s];                          \
                                T *restrict r = tb + (m * ns_ + s) * K;                     \
                                for (int64_t t = 0; t < K; ++t) r[t] *= f;                  \
                            }                                                               \
                        beta = &one;                                                        \
                    }                                                                       \
                }                                                                           \
                ((gemm_##SFX##_t)gemm)("T", "N", &gm, &gn, &gk, &one, (const T *)w[b], &gk, \
                                       bufH, &gk, beta, tb, &gm);                           \
                for (int64_t m = 0; m < d; ++m)                                             \
                    for (int64_t p = 0; p < kb; ++p, ++o) {                                 \
                        trows[o] = tb + m * ns_ * K + p * C;                                \
                        tld[o] = K;                                                         \
                    }                                                                       \
                tb += d * ns_ * K;                                                          \
            }                                                                               \
            const map_t mt = {trows, tld, 0};                                               \
            for (int64_t n0 = b0 * C; n0 < n_end; n0 += TL) {                               \
                const int64_t wd = (n_end - n0) < TL ? (n_end - n0) : TL;                   \
                const int ns = make_segs(sg, n0, wd, C);                                    \
                for (int k = 0; k < ns; ++k) { sl[k] = sg[k]; sl[k].b -= b0; }              \
                pack_##SFX(bufB, &mx, d_in, sg, ns, wd, NULL, NULL, NULL);                  \
                pack_##SFX(bufA, &mt, d_out, sl, ns, wd, NULL, NULL, NULL);                 \
                if (pl->kind == 1)                                                          \
                    tilebw_##SFX(pl, (const char *)bufA, (const char *)bufB, bufD, d_in, &mdx, \
                                 sg, ns, wd);                                               \
                else                                                                        \
                    tile_##SFX(pl, (const char *)bufA, (const char *)bufB, &mdx, sg, ns, wd, 0, \
                               NULL, NULL, 0, pl->n_out);                                   \
            }                                                                               \
        }                                                                                   \
        if (gemm_threads) ((int (*)(int))gemm_threads)(prev);                               \
        _Pragma("omp barrier")                                                              \
        int ok;                                                                             \
        _Pragma("omp atomic read")                                                          \
        ok = rc;                                                                            \
        if (dwt && ok == 0)   /* the threads' sums, in thread order, split over the threads */ \
            for (int64_t b = 0, off = 0; b < nblk; ++b) {                                   \
                if (blk_k[b] == 0) continue;                                                \
                const int64_t n = c_out * blk_k[b] * C;                                     \
                T *out = (T *)dwt[b];                                                       \
                _Pragma("omp for schedule(static)")                                         \
                for (int64_t t = 0; t < n; ++t) {                                           \
                    T s = 0;                                                                \
                    for (int k = 0; k < nt; ++k) s += accs[k][off + t];                     \
                    out[t] = s;                                                             \
                }                                                                           \
                off += n;                                                                   \
            }                                                                               \
    }                                                                                       \
    cache_release(c);                                                                       \
    return rc;                                                                              \
}

DEFINE_KERNELS(float, f32, TILE_F32)
DEFINE_KERNELS(double, f64, TILE_F64)
DEFINE_LINEAR(float, f32, TILE_F32)
DEFINE_LINEAR(double, f64, TILE_F64)
DEFINE_LINEAR_BW(float, f32, TILE_F32)
DEFINE_LINEAR_BW(double, f64, TILE_F64)

int holovae_cg_tile_f32(void) { return TILE_F32; }
int holovae_cg_tile_f64(void) { return TILE_F64; }
int holovae_cg_abi_version(void) { return 7; }
