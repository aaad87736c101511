/*
 * The 3D Zernike transform of point clouds (float32), for holovae.
 *
 * Plain C (GNU C11: vector extensions) + OpenMP, no torch headers; loaded from Python with
 * ctypes (holovae/transforms/zernike_kernel.py). For every group g (one channel of one cloud)
 * the sum over its points
 *
 *   S[g, col_l + k (2l+1) + m] = sum_{p in g} s_p Rt_{k,l}(u_p) Q_{l,m}(x_p)
 *
 *   x_p = pts[p] / r_max, u_p = |x_p|^2, the points of g being pts[order[start[g] + j]],
 *   j < size[g]; col_l = sum_{l' < l} n_r(l') (2l'+1), n_r(l) = (n_max - l) / 2 + 1;
 *   Rt_{k,l}  the normalised Jacobi part of R_{l+2k,l} (no x^l), by the three-term recurrence
 *             Rt_k = (c1_k (2u-1) + c0_k) Rt_{k-1} - c2_k Rt_{k-2}, Rt_0 = seed_l
 *             (coefficients [k_max+1, L+1] from holovae.transforms.zernike._recurrence);
 *   Q_{l,m}   the unnormalised real solid harmonics of holovae.transforms.zernike.
 *             _solid_harmonics_rows (they carry the |x|^l), seeded with Q_00 = s_p, by its
 *             recurrence constants sa, sb (_solid_coefs, degree after degree);
 *   s_p       w_p (weights, or 1), divided, with `square`, by the point's squared basis norm
 *             sum_l (2l+1)/(4 pi) u^l sum_k Rt_{k,l}^2 (addition theorem);
 *
 * is taken to e3nn's basis (A_l [2l+1, 2l+1] of holovae.transforms.zernike._to_e3nn, about a
 * quarter of its entries nonzero, as compressed rows) and stored in the output row of the
 * group's cloud: out[cloud, off_l + chan n_r(l) (2l+1) + k (2l+1) + m'] =
 * sum_m A_l[m', m] S[g, col_l + k (2l+1) + m].
 *
 * How it is fast. One vector lane per group: VL (8) groups are summed at once, lane q walking
 * through the points of group q (the groups come sorted by size, so neighbours have about as
 * many points; a lane past its group's end gets weight 0). The recurrences run on all lanes
 * for CH (4) points, into small buffers that stay in L1; the sum of outer products then keeps a
 * 2 x MT tile of (k, m) sums in registers across those CH points and adds it to the
 * accumulator once per chunk, not once per point. With one group per lane there is no
 * horizontal sum, and the change of basis runs on all VL groups at once. Each group's output
 * is written by one thread: the result does not depend on the thread count.
 *
 * Precision: the radial recurrence and each point's norm run in float64 (in float32 the
 * recurrence to n = 20 alone loses ~1e-6 of the coefficients' norm); the solid harmonics and
 * the outer products are float32, summed in float32 over at most WINDOW points and then in
 * float64, as is the change of basis. The tests bound the difference from the float64 torch
 * path (relative 1e-6; measured ~2e-7, as the torch path's float32).
 *
 * Return codes: 0 ok, -2 out of memory, -3 bad argument.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ABI_VERSION 2
#define VL 8                          /* floats per vector */
#define CH 4                          /* steps per chunk */
#define MT 5                          /* orders per register tile */
#define WINDOW 64                     /* steps gathered, and summed in float32, at a time */
typedef float vf __attribute__((vector_size(VL * sizeof(float))));

int holovae_zernike_abi_version(void) { return ABI_VERSION; }

typedef double vd __attribute__((vector_size(VL / 2 * sizeof(double))));
typedef float vh __attribute__((vector_size(VL / 2 * sizeof(float))));

static inline vd dsplat(double a) { return (vd){a, a, a, a}; }

/* two float64 halves -> one float32 vector */
static inline vf narrow(vd lo, vd hi)
{
    vh a = __builtin_convertvector(lo, vh), b = __builtin_convertvector(hi, vh);
    return __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7);
}

typedef struct {
    int lmax, n_max;
    const double *c1, *c0, *c2, *seed;   /* [kmax+1, L+1], seed [L+1] */
    const float *sa, *sb;                /* solid-harmonic recurrence constants */
    const int64_t *col;                  /* [L+1] */
    int square;
} plan_t;

/* acc[0..mt) (and acc1, for a second radial row r1) += sum over the chunk's steps of r q[t] */
static inline __attribute__((always_inline)) void tile(const vf *r0, const vf *r1, const vf *q, vf *a0, vf *a1,
                                                       const int mt)
{
    vf s0[MT], s1[MT];
    for (int t = 0; t < mt; t++) { s0[t] = r0[0] * q[t * CH]; if (r1) s1[t] = r1[0] * q[t * CH]; }
#pragma GCC unroll 8
    for (int b = 1; b < CH; b++) {
        const vf x0 = r0[b], x1 = r1 ? r1[b] : x0;
        for (int t = 0; t < mt; t++) {
            const vf qv = q[t * CH + b];
            s0[t] += x0 * qv;
            if (r1) s1[t] += x1 * qv;
        }
    }
    for (int t = 0; t < mt; t++) { a0[t] += s0[t]; if (r1) a1[t] += s1[t]; }
}

/* the tile's width fixed at compile time, so that its sums stay in registers */
#define TILES(R0, R1, A0, A1)                                                           \
    for (int m0 = 0; m0 < d; m0 += MT) {                                                \
        switch (d - m0 < MT ? d - m0 : MT) {                                            \
        case 1: tile(R0, R1, q + m0 * CH, A0 + m0, A1 ? A1 + m0 : NULL, 1); break;      \
        case 2: tile(R0, R1, q + m0 * CH, A0 + m0, A1 ? A1 + m0 : NULL, 2); break;      \
        case 3: tile(R0, R1, q + m0 * CH, A0 + m0, A1 ? A1 + m0 : NULL, 3); break;      \
        case 4: tile(R0, R1, q + m0 * CH, A0 + m0, A1 ? A1 + m0 : NULL, 4); break;      \
        default: tile(R0, R1, q + m0 * CH, A0 + m0, A1 ? A1 + m0 : NULL, MT); break;    \
        }                                                                               \
    }

/* the sums of VL groups at once, one per lane, added to acc [K]: step j of lane q is point j
 * of group q (SoA X, Y, Z, W [steps, VL], steps a multiple of CH; lanes past their group's end
 * have W = 0). R [(kmax+1) (L+1), CH], Q [(L+1)^2, CH]: the chunk's radial and angular parts */
static void group_sum(const plan_t *pl, const double *X, const double *Yc, const double *Z, const double *W,
                      int64_t steps, vf *R, vf *Q, vd *Rd, vf *acc)
{
    const int lmax = pl->lmax, L1 = lmax + 1, n_max = pl->n_max, kmax = n_max / 2;
    const int ncoef = (kmax + 1) * L1;
    for (int64_t j0 = 0; j0 < steps; j0 += CH) {
        for (int c = 0; c < CH; c++) {
            const int64_t j = j0 + c;
#define RR(k, l) R[((k) * L1 + (l)) * CH + c]
#define QQ(i) Q[(i) * CH + c]
            /* the radial part and the point's norm in float64 (two 4-lane halves): in float32 the
             * recurrence to n = 20 alone loses ~1e-6 of the coefficients' norm */
            vd xd[2], yd[2], zd[2], wd[2], ud[2], td[2];
            memcpy(xd, X + j * VL, sizeof xd); memcpy(yd, Yc + j * VL, sizeof yd);
            memcpy(zd, Z + j * VL, sizeof zd); memcpy(wd, W + j * VL, sizeof wd);
            for (int h = 0; h < 2; h++) {
                ud[h] = xd[h] * xd[h] + yd[h] * yd[h] + zd[h] * zd[h];
                td[h] = 2.0 * ud[h] - 1.0;
            }
#define RD(h, k, l) Rd[(h) * ncoef + (k) * L1 + (l)]
            for (int h = 0; h < 2; h++) {
                for (int l = 0; l < L1; l++) RD(h, 0, l) = dsplat(pl->seed[l]);
                for (int k = 1; k <= kmax; k++) {
                    const int v = n_max - 2 * k + 1 < L1 ? n_max - 2 * k + 1 : L1;
                    const double *a1 = pl->c1 + k * L1, *a0 = pl->c0 + k * L1, *a2 = pl->c2 + k * L1;
                    if (k >= 2)
                        for (int l = 0; l < v; l++)
                            RD(h, k, l) = (td[h] * a1[l] + a0[l]) * RD(h, k - 1, l) - RD(h, k - 2, l) * a2[l];
                    else
                        for (int l = 0; l < v; l++) RD(h, k, l) = (td[h] * a1[l] + a0[l]) * RD(h, k - 1, l);
                }
                if (pl->square) {
                    vd norm2 = dsplat(0.0);
                    for (int l = lmax; l >= 0; l--) {
                        vd sq = dsplat(0.0);
                        for (int k = 0; 2 * k <= n_max - l; k++) sq += RD(h, k, l) * RD(h, k, l);
                        norm2 = norm2 * ud[h] + sq * ((2 * l + 1) / (4.0 * M_PI));
                    }
                    wd[h] = wd[h] / norm2;
                }
            }
            for (int l = 0; l < L1; l++)
                for (int k = 0; 2 * k <= n_max - l; k++) RR(k, l) = narrow(RD(0, k, l), RD(1, k, l));
#undef RD
            const vf x = narrow(xd[0], xd[1]), y = narrow(yd[0], yd[1]), z = narrow(zd[0], zd[1]);
            const vf u = narrow(ud[0], ud[1]), s = narrow(wd[0], wd[1]);
            QQ(0) = s;
            const float *pa = pl->sa, *pb = pl->sb;
            for (int l = 1; l < L1; l++) {
                const int o = l * l, op = (l - 1) * (l - 1), opp = (l - 2) * (l - 2);
                for (int i = 0; i < 2 * l - 1; i++) QQ(o + i + 1) = QQ(op + i) * z * pa[i];
                pa += 2 * l - 1;
                if (l >= 2) {
                    for (int i = 0; i < 2 * l - 3; i++) QQ(o + i + 2) -= QQ(opp + i) * u * pb[i];
                    pb += 2 * l - 3;
                }
                if (l == 1) {
                    QQ(1) = QQ(0) * y;
                    QQ(3) = QQ(0) * x;
                } else {
                    const vf cp = QQ(op + 2 * l - 2), sp = QQ(op);
                    QQ(o + 2 * l) = cp * x - sp * y;
                    QQ(o) = sp * x + cp * y;
                }
            }
#undef RR
#undef QQ
        }
        for (int l = 0; l < L1; l++) {
            const int d = 2 * l + 1, nr = (n_max - l) / 2 + 1;
            vf *a = acc + pl->col[l];
            const vf *q = Q + l * l * CH;
            int k = 0;
            for (; k + 1 < nr; k += 2) {
                vf *ak = a + k * d, *ak1 = a + (k + 1) * d;
                TILES(R + (k * L1 + l) * CH, R + ((k + 1) * L1 + l) * CH, ak, ak1)
            }
            if (k < nr) {
                vf *ak = a + k * d, *none = NULL;
                TILES(R + (k * L1 + l) * CH, (const vf *)NULL, ak, none)
            }
        }
    }
}

/* the sums of the batch's nl groups (lanes of accd: two float64 halves per element) -> e3nn
 * basis, each stored at its place in its output row */
static void store(const vd *accd, int lmax, int n_max, const int64_t *col, const int64_t *a_ptr,
                  const int64_t *a_col, const double *a_val, float *out, const int64_t *row_base,
                  const int64_t *chan, int nl, const int64_t *off)
{
    const int64_t *ptr = a_ptr;               /* degree l's rows: ptr[0..2l+1] */
    for (int l = 0; l <= lmax; l++) {
        const int d = 2 * l + 1, nr = (n_max - l) / 2 + 1;
        int64_t dst[VL];
        for (int q = 0; q < nl; q++) dst[q] = row_base[q] + off[l] + chan[q] * (int64_t)nr * d;
        for (int k = 0; k < nr; k++) {
            const vd *src = accd + 2 * (col[l] + k * d);
            for (int m = 0; m < d; m++) {
                vd lo = {0}, hi = {0};
                for (int64_t e = ptr[m]; e < ptr[m + 1]; e++) {
                    lo += a_val[e] * src[2 * a_col[e]];
                    hi += a_val[e] * src[2 * a_col[e] + 1];
                }
                const vf v = narrow(lo, hi);
                for (int q = 0; q < nl; q++) out[dst[q] + k * d + m] = v[q];
            }
        }
        ptr += d;
    }
}

int holovae_zernike_transform(const void *pts, int pts_f32, const double *weights,
                              const int64_t *order, const int64_t *start, const int64_t *size,
                              const int64_t *cloud, const int64_t *chan, int64_t G, int lmax,
                              int n_max, double r_max, const double *c1, const double *c0,
                              const double *c2, const double *seed, const double *sa64,
                              const double *sb64, int square, const int64_t *a_ptr,
                              const int64_t *a_col, const double *a_val,
                              const int64_t *off, float *out, int64_t dim, int nthreads)
{
    if (lmax < 0 || n_max < lmax || !(r_max > 0) || G < 0 || nthreads < 1) return -3;
    const int L1 = lmax + 1, kmax = n_max / 2;
    int64_t nmax_group = 0;
    for (int64_t g = 0; g < G; g++) {
        if (size[g] < 0) return -3;
        if (size[g] > nmax_group) nmax_group = size[g];
    }
    const size_t ncoef = (size_t)(kmax + 1) * L1;
    int64_t *col = malloc((size_t)L1 * sizeof(int64_t));
    float *cf = malloc((2 * (size_t)L1 * L1 + 2) * sizeof(float));
    if (!col || !cf) { free(col); free(cf); return -2; }
    float *sa = cf, *sb = sa + L1 * L1 + 1;
    int64_t K = 0;
    for (int l = 0; l < L1; l++) { col[l] = K; K += (int64_t)((n_max - l) / 2 + 1) * (2 * l + 1); }
    for (int i = 0; i < lmax * lmax; i++) sa[i] = (float)sa64[i];
    for (int i = 0; i < (lmax >= 2 ? (lmax - 1) * (lmax - 1) : 0); i++) sb[i] = (float)sb64[i];
    const plan_t pl = {lmax, n_max, c1, c0, c2, seed, sa, sb, col, square};
    const double inv_rmax = 1.0 / r_max;
    /* points are gathered WINDOW steps at a time: the scratch stays small for any cloud */
    const size_t npad = (size_t)((nmax_group < WINDOW ? nmax_group : WINDOW) + CH - 1) / CH * CH;
    int rc = 0;
#pragma omp parallel num_threads(nthreads)
    {
        vf *R = aligned_alloc(64, (ncoef * CH * sizeof(vf) + 63) / 64 * 64);
        vf *Q = aligned_alloc(64, ((size_t)L1 * L1 * CH * sizeof(vf) + 63) / 64 * 64);
        vf *acc = aligned_alloc(64, ((size_t)K * sizeof(vf) + 63) / 64 * 64);
        vd *accd = aligned_alloc(64, ((size_t)2 * K * sizeof(vd) + 63) / 64 * 64);
        vd *Rd = aligned_alloc(64, (2 * ncoef * sizeof(vd) + 63) / 64 * 64);
        double *xyzw = aligned_alloc(64, ((4 * npad * VL) * sizeof(double) + 63) / 64 * 64);
        const int ok = R && Q && Rd && acc && accd && xyzw;
        if (!ok) {
#pragma omp atomic write
            rc = -2;
        }
#pragma omp for schedule(dynamic, 4)
        for (int64_t g0 = 0; g0 < G; g0 += VL) {
            if (!ok) continue;
            const int nl = G - g0 < VL ? (int)(G - g0) : VL;
            int64_t steps = 0;
            for (int q = 0; q < nl; q++) if (size[g0 + q] > steps) steps = size[g0 + q];
            memset(accd, 0, (size_t)2 * K * sizeof(vd));
            for (int64_t w0 = 0; w0 < steps; w0 += WINDOW) {
                memset(acc, 0, (size_t)K * sizeof(vf));
                const int64_t ws = steps - w0 < WINDOW ? steps - w0 : WINDOW;
                const int64_t wsp = (ws + CH - 1) / CH * CH;
                double *X = xyzw, *Yc = X + npad * VL, *Z = Yc + npad * VL, *W = Z + npad * VL;
                for (int q = 0; q < VL; q++) {
                    const int64_t n0 = q < nl ? size[g0 + q] - w0 : 0;
                    const int64_t n = n0 < 0 ? 0 : (n0 < ws ? n0 : ws);
                    const int64_t *idx = q < nl ? order + start[g0 + q] + w0 : NULL;
                    for (int64_t j = 0; j < n; j++) {
                        const int64_t p = idx[j];
                        if (pts_f32) {
                            const float *f = (const float *)pts + 3 * p;
                            X[j * VL + q] = f[0] * inv_rmax; Yc[j * VL + q] = f[1] * inv_rmax;
                            Z[j * VL + q] = f[2] * inv_rmax;
                        } else {
                            const double *f = (const double *)pts + 3 * p;
                            X[j * VL + q] = f[0] * inv_rmax; Yc[j * VL + q] = f[1] * inv_rmax;
                            Z[j * VL + q] = f[2] * inv_rmax;
                        }
                        W[j * VL + q] = weights ? weights[p] : 1.0;
                    }
                    for (int64_t j = n; j < wsp; j++)                  /* padding: s = 0 */
                        X[j * VL + q] = Yc[j * VL + q] = Z[j * VL + q] = W[j * VL + q] = 0.0;
                }
                group_sum(&pl, X, Yc, Z, W, wsp, R, Q, Rd, acc);
                /* float32 sums of at most WINDOW points each, added up in float64 */
                for (int64_t c = 0; c < K; c++) {
                    const vh lo = __builtin_shufflevector(acc[c], acc[c], 0, 1, 2, 3);
                    const vh hi = __builtin_shufflevector(acc[c], acc[c], 4, 5, 6, 7);
                    accd[2 * c] += __builtin_convertvector(lo, vd);
                    accd[2 * c + 1] += __builtin_convertvector(hi, vd);
                }
            }
            int64_t row_base[VL];
            for (int q = 0; q < nl; q++) row_base[q] = cloud[g0 + q] * dim;
            store(accd, lmax, n_max, col, a_ptr, a_col, a_val, out, row_base, chan + g0, nl, off);
        }
        free(R); free(Q); free(Rd); free(acc); free(accd); free(xyzw);
    }
    free(col); free(cf);
    return rc;
}
