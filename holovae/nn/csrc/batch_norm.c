/*
 * The passes of holovae's stacked SO(3) batch norm (holovae/nn/norms.py, _StackedBatchNorm)
 * over a feature tensor X [D, B, C] (row d = one (degree, m) component; contiguous):
 *
 *   holovae_bn_sq_sums     S[d, c]  = sum_b X[d, b, c]^2
 *   holovae_bn_apply       out      = X * a[d, c]  (+ shift0[c] on row 0)
 *   holovae_bn_grad_sums   G[d, c]  = sum_b g[d, b, c] X[d, b, c],  g0[c] = sum_b g[0, b, c]
 *   holovae_bn_grad_apply  dX       = g * a[d, c] - X * k[d, c]  (+ corr0[c] on row 0)
 *
 * Each is one pass over its full-size operands (torch's version of the same algebra writes
 * several full-size temporaries).  Sums are accumulated in double and are the same bits for
 * any thread count (rows are split over threads, never a sum).  OpenMP over rows.
 * Return codes: 0 ok, -3 bad argument.
 */
#include <stdint.h>
#include <stdlib.h>

#define DEFINE_BN(T, SFX)                                                                   \
int holovae_bn_sq_sums_##SFX(const T *X, int64_t D, int64_t B, int64_t C, T *S, int nthreads) \
{                                                                                           \
    if (D < 0 || B < 0 || C < 1 || !X || !S) return -3;                                     \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                      \
    for (int64_t d = 0; d < D; ++d) {                                                       \
        double acc[C];                                                                      \
        for (int64_t c = 0; c < C; ++c) acc[c] = 0;                                         \
        const T *x = X + d * B * C;                                                         \
        for (int64_t b = 0; b < B; ++b, x += C)                                             \
            for (int64_t c = 0; c < C; ++c) acc[c] += (double)x[c] * (double)x[c];          \
        for (int64_t c = 0; c < C; ++c) S[d * C + c] = (T)acc[c];                           \
    }                                                                                       \
    return 0;                                                                               \
}                                                                                           \
                                                                                            \
int holovae_bn_apply_##SFX(const T *X, int64_t D, int64_t B, int64_t C, const T *a,         \
                           const T *shift0, T *out, int nthreads)                           \
{                                                                                           \
    if (D < 0 || B < 0 || C < 1 || !X || !a || !out) return -3;                             \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                      \
    for (int64_t d = 0; d < D; ++d) {                                                       \
        const T *x = X + d * B * C, *ad = a + d * C;                                        \
        T *o = out + d * B * C;                                                             \
        const T *s = (d == 0) ? shift0 : NULL;                                              \
        for (int64_t b = 0; b < B; ++b, x += C, o += C) {                                   \
            if (s) for (int64_t c = 0; c < C; ++c) o[c] = x[c] * ad[c] + s[c];              \
            else   for (int64_t c = 0; c < C; ++c) o[c] = x[c] * ad[c];                     \
        }                                                                                   \
    }                                                                                       \
    return 0;                                                                               \
}                                                                                           \
                                                                                            \
int holovae_bn_grad_sums_##SFX(const T *g, const T *X, int64_t D, int64_t B, int64_t C,      \
                               T *G, T *g0, int nthreads)                                   \
{                                                                                           \
    if (D < 1 || B < 0 || C < 1 || !g || !X || !G || !g0) return -3;                        \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                      \
    for (int64_t d = 0; d < D; ++d) {                                                       \
        double acc[C], acc0[C];                                                             \
        for (int64_t c = 0; c < C; ++c) acc[c] = acc0[c] = 0;                               \
        const T *x = X + d * B * C, *gg = g + d * B * C;                                    \
        for (int64_t b = 0; b < B; ++b, x += C, gg += C)                                    \
            for (int64_t c = 0; c < C; ++c) acc[c] += (double)gg[c] * (double)x[c];         \
        if (d == 0) {                                                                       \
            gg = g;                                                                         \
            for (int64_t b = 0; b < B; ++b, gg += C)                                        \
                for (int64_t c = 0; c < C; ++c) acc0[c] += (double)gg[c];                   \
            for (int64_t c = 0; c < C; ++c) g0[c] = (T)acc0[c];                             \
        }                                                                                   \
        for (int64_t c = 0; c < C; ++c) G[d * C + c] = (T)acc[c];                           \
    }                                                                                       \
    return 0;                                                                               \
}                                                                                           \
                                                                                            \
int holovae_bn_grad_apply_##SFX(const T *g, const T *X, int64_t D, int64_t B, int64_t C,     \
                                const T *a, const T *k, const T *corr0, T *dX, int nthreads) \
{                                                                                           \
    if (D < 0 || B < 0 || C < 1 || !g || !X || !a || !k || !dX) return -3;                  \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                      \
    for (int64_t d = 0; d < D; ++d) {                                                       \
        const T *x = X + d * B * C, *gg = g + d * B * C, *ad = a + d * C, *kd = k + d * C;  \
        T *o = dX + d * B * C;                                                              \
        const T *s = (d == 0) ? corr0 : NULL;                                               \
        for (int64_t b = 0; b < B; ++b, x += C, gg += C, o += C) {                          \
            if (s) for (int64_t c = 0; c < C; ++c) o[c] = gg[c] * ad[c] - x[c] * kd[c] + s[c]; \
            else   for (int64_t c = 0; c < C; ++c) o[c] = gg[c] * ad[c] - x[c] * kd[c];     \
        }                                                                                   \
    }                                                                                       \
    return 0;                                                                               \
}

DEFINE_BN(float, f32)
DEFINE_BN(double, f64)

int holovae_bn_abi_version(void) { return 1; }
