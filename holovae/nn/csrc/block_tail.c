/*
 * The end of a fused CG block (holovae/nn/block_tail.py) after the per-degree linear, on the
 * stacked linear output H [D, B, C] (row d = one (degree, m) component; contiguous), with the
 * signal norm's factor f[d, b] = w[d] * s[b] (w: the norm's weight of row d's degree, s: the
 * sample's rsqrt(power + eps)):
 *
 *   holovae_tail_forward   out[d, b, c] = H[d, b, c] * w[d] * s[b]
 *                                         + shift0[c]                       (row 0; shift0 may be NULL)
 *                                         + skip[d, b, c]    (d < skip_d, c < skip_c; skip may be NULL)
 *   holovae_tail_backward  dfac[d, b]   = sum_c g[d, b, c] * H[d, b, c]
 *                          dH[d, b, c]  = g[d, b, c] * w[d] * s[b]
 *
 * One pass each way over the full-size operands, where torch's form is a broadcast multiply,
 * an in-place add and, backward, a multiply-and-sum for the dot products plus a second
 * multiply.  Every output element is computed by one thread (rows (d, b) split over threads),
 * so the results are the same bits for any thread count.  skip is [skip_D, B, skip_C] with
 * skip_d <= min(D, skip_D) rows and skip_c <= min(C, skip_C) channels added.
 * Return codes: 0 ok, -3 bad argument.
 */
#include <stdint.h>
#include <stdlib.h>

#define DEFINE_TAIL(T, SFX)                                                                 \
int holovae_tail_forward_##SFX(const T *H, int64_t D, int64_t B, int64_t C, const T *w,     \
                               const T *s, const T *shift0, const T *skip, int64_t skip_C,  \
                               int64_t skip_d, int64_t skip_c, T *out, int nthreads)        \
{                                                                                           \
    if (D < 0 || B < 0 || C < 1 || !H || !w || !s || !out) return -3;                       \
    if (skip && (skip_C < 1 || skip_d < 0 || skip_d > D || skip_c < 0 || skip_c > C         \
                 || skip_c > skip_C)) return -3;                                            \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                      \
    for (int64_t r = 0; r < D * B; ++r) {                                                   \
        const int64_t d = r / B, b = r % B;                                                 \
        const T f = w[d] * s[b];                                                            \
        const T *restrict h = H + r * C;                                                    \
        T *restrict o = out + r * C;                                                        \
        for (int64_t c = 0; c < C; ++c) o[c] = h[c] * f;                                    \
        if (d == 0 && shift0)                                                               \
            for (int64_t c = 0; c < C; ++c) o[c] += shift0[c];                              \
        if (skip && d < skip_d) {                                                           \
            const T *restrict k = skip + (d * B + b) * skip_C;                              \
            for (int64_t c = 0; c < skip_c; ++c) o[c] += k[c];                              \
        }                                                                                   \
    }                                                                                       \
    return 0;                                                                               \
}                                                                                           \
                                                                                            \
int holovae_tail_backward_##SFX(const T *g, const T *H, int64_t D, int64_t B, int64_t C,    \
                                const T *w, const T *s, T *dH, T *dfac, int nthreads)       \
{                                                                                           \
    if (D < 0 || B < 0 || C < 1 || !g || !H || !w || !s || !dH || !dfac) return -3;         \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                      \
    for (int64_t r = 0; r < D * B; ++r) {                                                   \
        const int64_t d = r / B, b = r % B;                                                 \
        const T f = w[d] * s[b];                                                            \
        const T *restrict gr = g + r * C, *restrict h = H + r * C;                          \
        T *restrict o = dH + r * C;                                                         \
        T acc = 0;                                                                          \
        _Pragma("omp simd reduction(+:acc)")                                                \
        for (int64_t c = 0; c < C; ++c) {                                                   \
            acc += gr[c] * h[c];                                                            \
            o[c] = gr[c] * f;                                                               \
        }                                                                                   \
        dfac[r] = acc;                                                                      \
    }                                                                                       \
    return 0;                                                                               \
}

DEFINE_TAIL(float, f32)
DEFINE_TAIL(double, f64)

int holovae_tail_abi_version(void) { return 1; }
