/* The GPU eigenvalue kernels: one warp per matrix, the matrix in shared memory (theory/_hqr.py launches them).
 *
 * top_kernel: the eigenvalue of largest modulus of a small non-symmetric matrix: Householder reduction to upper
 *   Hessenberg form (reflectors as LAPACK's dlarfg, the column scaled by its largest entry), then the Francis
 *   double-shift QR of EISPACK's hqr with deflation and exceptional shifts, eigenvalues only.
 * sym_max_kernel: the largest eigenvalue of a symmetric matrix: the same reduction (tridiagonal for a symmetric
 *   matrix), then multisection on Sturm counts, 32 points per round, one per lane.
 *
 * Work sharing: the per-step scalars (norms, shifts, reflectors, deflation tests) are computed by every lane of
 * the warp alike from shared memory, so the lanes agree without communicating; the O(m) row and column updates
 * of each step are spread over the lanes (PAR), and __syncwarp orders each step's writes before the next step's
 * reads. The same source compiles as plain C for the CPU (HQR_CPU: one "lane" runs every index of a PAR loop),
 * which is how CI, with no GPU, checks the algorithm against LAPACK (tests/test_hqr.py).
 *
 * A shared-memory matrix has row stride ld = m | 1 (odd): a warp reading a column touches distinct banks.
 */

#ifdef HQR_CPU
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#define DEV static inline
#define PAR(j, lo, hi) for (int j = (lo); j < (hi); j++)
#define SYNC() ((void)0)
#define LANE0 if (1)
#else
#define DEV __device__ __forceinline__
#define PAR(j, lo, hi) for (int j = (lo) + lane; j < (hi); j += 32)
#define SYNC() __syncwarp()
#define LANE0 if (lane == 0)
#endif

#define AT(i, j) A[(i) * ld + (j)]

/* 1 / s where that is finite, else 0 (s subnormal): a caller then divides instead. Multiplying by one reciprocal
 * replaces several divisions, each a dozen instructions on a GPU, where the kernels spend most of their time */
DEV double recip(double s) {
    double r = 1.0 / s;
    return fabs(r) <= 1.7976931348623157e308 ? r : 0.0;
}

/* (p, q, r) / s, through one reciprocal where it is finite */
DEV void scale3(double *p, double *q, double *r, double s) {
    double rs = recip(s);
    if (rs != 0.0) {
        *p *= rs;
        *q *= rs;
        *r *= rs;
    } else {
        *p /= s;
        *q /= s;
        *r /= s;
    }
}

/* doubles of shared memory one matrix takes: the matrix, two vectors of m, 32 multisection counts */
DEV int warp_doubles(int m) { return m * (m | 1) + 2 * m + 32; }

/* A (m x m, stride ld) -> upper Hessenberg by Householder similarities; v: m doubles of scratch */
DEV void hessenberg(double *A, double *v, int m, int ld, int lane) {
    (void)lane;
    for (int k = 0; k < m - 2; k++) {
        double amax = 0.0;
        for (int i = k + 1; i < m; i++) {
            double a = fabs(AT(i, k));
            amax = a > amax ? a : amax;
        }
        if (amax == 0.0) continue;
        double ssq = 0.0, ra = recip(amax);
        for (int i = k + 2; i < m; i++) {
            double t = ra != 0.0 ? AT(i, k) * ra : AT(i, k) / amax;
            ssq += t * t;
        }
        if (ssq == 0.0) continue;
        double x0 = AT(k + 1, k), t0 = ra != 0.0 ? x0 * ra : x0 / amax;
        double beta = -copysign(amax * sqrt(ssq + t0 * t0), x0);
        double tau = (beta - x0) / beta, den = x0 - beta, rden = recip(den);
        PAR(i, k + 1, m) v[i] = i == k + 1 ? 1.0 : rden != 0.0 ? AT(i, k) * rden : AT(i, k) / den;
        SYNC();
        PAR(j, k + 1, m) {  /* H A: each lane its columns */
            double s = 0.0;
            for (int i = k + 1; i < m; i++) s += v[i] * AT(i, j);
            s *= tau;
            for (int i = k + 1; i < m; i++) AT(i, j) -= s * v[i];
        }
        SYNC();
        PAR(i, 0, m) {  /* (H A) H: each lane its rows; column k becomes (.., beta, 0, ..) */
            double s = 0.0;
            for (int j = k + 1; j < m; j++) s += AT(i, j) * v[j];
            s *= tau;
            for (int j = k + 1; j < m; j++) AT(i, j) -= s * v[j];
            if (i > k) AT(i, k) = i == k + 1 ? beta : 0.0;
        }
        SYNC();
    }
}

#define RECORD(mod, r, i_) do { if ((mod) > best) { best = (mod); *re = (r); *im = (i_); } } while (0)

/* eigenvalue of largest modulus of the Hessenberg A (m x m, overwritten) into (re, im); 1 if converged */
DEV int hqr_top(double *A, int m, int ld, int lane, double *re, double *im) {
    (void)lane;
    double anorm = 0.0;
    for (int i = 0; i < m; i++)
        for (int j = i > 0 ? i - 1 : 0; j < m; j++) anorm += fabs(AT(i, j));
    double best = -1.0, t = 0.0;
    *re = 0.0;
    *im = 0.0;
    int nn = m - 1, its = 0;
    const int maxit = 30 * (m > 10 ? m : 10);  /* per eigenvalue, as LAPACK's dlahqr */
    while (nn >= 0) {
        int q = nn;
        while (q >= 1) {
            double ss = fabs(AT(q - 1, q - 1)) + fabs(AT(q, q));
            if (ss == 0.0) ss = anorm;
            if (fabs(AT(q, q - 1)) + ss == ss) break;
            q--;
        }
        if (q >= 1) {  /* a negligible subdiagonal: set it to zero once every lane has read it */
            SYNC();
            LANE0 AT(q, q - 1) = 0.0;
            SYNC();
        }
        double x = AT(nn, nn);
        if (q == nn) {
            double r = x + t;
            RECORD(fabs(r), r, 0.0);
            nn -= 1;
            its = 0;
            continue;
        }
        double y = AT(nn - 1, nn - 1), w = AT(nn, nn - 1) * AT(nn - 1, nn);
        if (q == nn - 1) {
            double p = 0.5 * (y - x), qq = p * p + w, z = sqrt(fabs(qq));
            x += t;
            if (qq >= 0.0) {
                z = p + copysign(z, p);
                double r1 = x + z, r2 = z != 0.0 ? x - w / z : r1;
                RECORD(fabs(r1), r1, 0.0);
                RECORD(fabs(r2), r2, 0.0);
            } else {
                double mod = hypot(x + p, z);
                RECORD(mod, x + p, z);
            }
            nn -= 2;
            its = 0;
            continue;
        }
        if (its >= maxit) return 0;
        if (its > 0 && its % 10 == 0) {  /* exceptional shift */
            t += x;
            SYNC();
            PAR(i, 0, nn + 1) AT(i, i) -= x;
            SYNC();
            double ss = fabs(AT(nn, nn - 1)) + fabs(AT(nn - 1, nn - 2));
            x = 0.75 * ss;
            y = x;
            w = -0.4375 * ss * ss;
        }
        its++;
        int mm = nn - 2;
        double p = 0.0, qv = 0.0, rv = 0.0;
        for (;;) {
            /* the first column of (H - s1)(H - s2) from row mm, times h21 (dividing by h21, as Numerical
             * Recipes does, overflows when h21 is tiny beside the shifts; only the direction is used) */
            double z = AT(mm, mm), r = x - z, s2 = y - z, h21 = AT(mm + 1, mm);
            p = r * s2 - w + AT(mm, mm + 1) * h21;
            qv = h21 * (AT(mm + 1, mm + 1) - z - r - s2);
            rv = h21 * AT(mm + 2, mm + 1);
            double ss = fabs(p) + fabs(qv) + fabs(rv);
            if (!(ss > 0.0)) {  /* all underflowed: any reflector is a valid similarity */
                p = 0.0;
                qv = 0.0;
                rv = 1.0;
                ss = 1.0;
            }
            scale3(&p, &qv, &rv, ss);
            if (mm == q) break;
            double u = fabs(AT(mm, mm - 1)) * (fabs(qv) + fabs(rv));
            double vv = fabs(p) * (fabs(AT(mm - 1, mm - 1)) + fabs(z) + fabs(AT(mm + 1, mm + 1)));
            if (u + vv == vv) break;
            mm--;
        }
        PAR(i, mm + 2, nn + 1) {
            AT(i, i - 2) = 0.0;
            if (i != mm + 2) AT(i, i - 3) = 0.0;
        }
        SYNC();
        for (int k = mm; k < nn; k++) {
            double xs = 1.0;
            if (k != mm) {
                p = AT(k, k - 1);
                qv = AT(k + 1, k - 1);
                rv = k != nn - 1 ? AT(k + 2, k - 1) : 0.0;
                xs = fabs(p) + fabs(qv) + fabs(rv);
                if (xs == 0.0) continue;
                scale3(&p, &qv, &rv, xs);
            }
            double ss = copysign(sqrt(p * p + qv * qv + rv * rv), p);
            if (ss == 0.0) continue;
            p += ss;  /* |p| >= |ss| >= 1/sqrt(3) after the scaling: the reciprocals below are finite */
            double rs = 1.0 / ss, rp = 1.0 / p;
            double xr = p * rs, yr = qv * rs, zr = rv * rs, qr = qv * rp, rr = rv * rp;
            const int three = k != nn - 1;
            PAR(j, k, nn + 1) {  /* rows k..k+2 from the left: each lane its columns (j >= k) */
                double pj = AT(k, j) + qr * AT(k + 1, j);
                if (three) {
                    pj += rr * AT(k + 2, j);
                    AT(k + 2, j) -= pj * zr;
                }
                AT(k + 1, j) -= pj * yr;
                AT(k, j) -= pj * xr;
            }
            SYNC();  /* every lane has read column k - 1 above: now it may change */
            if (k == mm) {
                if (q != mm) LANE0 AT(k, k - 1) = -AT(k, k - 1);
            } else {
                LANE0 AT(k, k - 1) = -ss * xs;
            }
            const int top = nn < k + 3 ? nn : k + 3;
            PAR(i, q, top + 1) {  /* columns k..k+2 from the right: each lane its rows */
                double pi = xr * AT(i, k) + yr * AT(i, k + 1);
                if (three) {
                    pi += zr * AT(i, k + 2);
                    AT(i, k + 2) -= pi * rr;
                }
                AT(i, k + 1) -= pi * qr;
                AT(i, k) -= pi;
            }
            SYNC();
        }
    }
    return 1;
}

/* number of eigenvalues of the symmetric tridiagonal (d, e2 = squared off-diagonal) <= x (LAPACK's dlaebz) */
DEV int sturm_count(const double *d, const double *e2, int m, double x, double pivmin) {
    double q = d[0] - x;
    if (fabs(q) < pivmin) q = -pivmin;
    int count = q <= 0.0;
    for (int i = 1; i < m; i++) {
        q = d[i] - e2[i - 1] / q - x;
        if (fabs(q) < pivmin) q = -pivmin;
        count += q <= 0.0;
    }
    return count;
}

/* largest eigenvalue of the symmetric A (m x m, overwritten); scratch: 2 m + 32 doubles */
DEV double sym_max(double *A, double *scratch, int m, int ld, int lane) {
    double *d = scratch, *e2 = scratch + m, *counts = scratch + 2 * m;
    hessenberg(A, d, m, ld, lane);  /* tridiagonal up to rounding; its subdiagonal is the off-diagonal */
    PAR(i, 0, m) {
        d[i] = AT(i, i);
        e2[i] = i + 1 < m ? AT(i + 1, i) * AT(i + 1, i) : 0.0;
    }
    SYNC();
    double lo = d[0], hi = d[0], emax = 0.0;
    for (int i = 0; i < m; i++) {  /* Gershgorin interval */
        double r = (i > 0 ? sqrt(e2[i - 1]) : 0.0) + (i + 1 < m ? sqrt(e2[i]) : 0.0);
        lo = d[i] - r < lo ? d[i] - r : lo;
        hi = d[i] + r > hi ? d[i] + r : hi;
        emax = e2[i] > emax ? e2[i] : emax;
    }
    const double eps = 2.220446049250313e-16, safmin = 2.2250738585072014e-308;
    double pivmin = safmin * (emax > 1.0 ? emax : 1.0);
    double span = hi - lo, pad = 2.0 * eps * (fabs(lo) > fabs(hi) ? fabs(lo) : fabs(hi)) + 2.0 * pivmin;
    lo -= pad + eps * span;
    hi += pad + eps * span;
    /* invariant: fewer than m eigenvalues <= lo, all m <= hi */
    for (int round = 0; round < 64; round++) {
        double tol = 2.0 * eps * (fabs(lo) > fabs(hi) ? fabs(lo) : fabs(hi)) + pivmin;
        if (hi - lo <= tol) break;
        double step = (hi - lo) / 33.0;
        PAR(l, 0, 32) counts[l] = (double)sturm_count(d, e2, m, lo + step * (l + 1), pivmin);
        SYNC();
        double nlo = lo, nhi = hi;
        for (int l = 0; l < 32; l++) {
            double xl = lo + step * (l + 1);
            if (counts[l] >= m) {
                nhi = xl;
                break;
            }
            nlo = xl;
        }
        SYNC();
        if (nlo == lo && nhi == hi) break;  /* no representable point inside: converged */
        lo = nlo;
        hi = nhi;
    }
    return 0.5 * (lo + hi);
}

#ifdef HQR_CPU

/* CPU builds of the same code, one matrix at a time: what CI checks against LAPACK */
int hqr_top_cpu(int64_t b, int m, const double *C, double *re, double *im, uint8_t *ok) {
    int ld = m | 1;
    double *A = malloc(sizeof(double) * warp_doubles(m));
    if (!A) return 1;
    for (int64_t w = 0; w < b; w++) {
        for (int idx = 0; idx < m * m; idx++) AT(idx / m, idx % m) = C[w * m * m + idx];
        hessenberg(A, A + m * ld, m, ld, 0);
        ok[w] = (uint8_t)hqr_top(A, m, ld, 0, re + w, im + w);
    }
    free(A);
    return 0;
}

int sym_max_cpu(int64_t b, int m, const double *G, double *out) {
    int ld = m | 1;
    double *A = malloc(sizeof(double) * warp_doubles(m));
    if (!A) return 1;
    for (int64_t w = 0; w < b; w++) {
        for (int idx = 0; idx < m * m; idx++) AT(idx / m, idx % m) = G[w * m * m + idx];
        out[w] = sym_max(A, A + m * ld, m, ld, 0);
    }
    free(A);
    return 0;
}

#else

/* this warp's matrix of the batch X (b, m, m), copied into its slot of the block's shared memory; sets *w to
 * its index and returns NULL past the batch. blockDim.x = 32 * (matrices per block) */
DEV double *warp_matrix(double *smem, long long b, int m, const double *__restrict__ X, int lane, long long *w) {
    const int ld = m | 1, slot = threadIdx.x >> 5;
    *w = (long long)blockIdx.x * (blockDim.x >> 5) + slot;
    if (*w >= b) return 0;
    double *A = smem + slot * warp_doubles(m);
    const double *src = X + *w * m * m;
    PAR(idx, 0, m * m) AT(idx / m, idx % m) = src[idx];
    SYNC();
    return A;
}

extern "C" __global__ void top_kernel(long long b, int m, const double *__restrict__ C, double *re, double *im,
                                      unsigned char *ok) {
    extern __shared__ double smem[];
    const int lane = threadIdx.x & 31, ld = m | 1;
    long long w;
    double *A = warp_matrix(smem, b, m, C, lane, &w);
    if (!A) return;
    hessenberg(A, A + m * ld, m, ld, lane);
    double r, i;
    int conv = hqr_top(A, m, ld, lane, &r, &i);
    if (lane == 0) {
        re[w] = r;
        im[w] = i;
        ok[w] = (unsigned char)conv;
    }
}

extern "C" __global__ void sym_max_kernel(long long b, int m, const double *__restrict__ G, double *out) {
    extern __shared__ double smem[];
    const int lane = threadIdx.x & 31, ld = m | 1;
    long long w;
    double *A = warp_matrix(smem, b, m, G, lane, &w);
    if (!A) return;
    double top = sym_max(A, A + m * ld, m, ld, lane);
    if (lane == 0) out[w] = top;
}

#endif
