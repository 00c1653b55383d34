/* Lockstep eigenvalue of largest modulus of many small non-symmetric matrices (CPU).
 *
 * Built and loaded by theory/_lockstep.py (cc -O3 -march=native, cached); see its docstring for why.
 *
 * LANES matrices travel together, stored lane-innermost: entry (i, j) of lane l is A[(i*m + j)*LANES + l], so
 * every row and column update of the Householder reduction to Hessenberg form and of the Francis double-shift
 * QR sweeps (EISPACK's hqr, Numerical Recipes' form, eigenvalues only) is one loop over lanes of compile-time
 * length, which the compiler turns into SIMD instructions with the lane's scalars in registers. Each lane keeps
 * its own active window, shifts, deflations and iteration count; a lane whose step is elsewhere is masked by
 * an identity reflector. The loops run over the union of the lanes' windows, a valid similarity transform of
 * every whole matrix (entries outside a lane's window are never read for its eigenvalues). When few lanes are
 * left, each is finished alone by the same code at one lane, so the group never waits for its stragglers.
 * A lane that does not converge within 30 m QR iterations is reported; the caller recomputes it with LAPACK.
 */
#include <complex.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef LANES
#define LANES 16
#endif
#define MAXM 128 /* largest order the kernel takes (the caller uses LAPACK beyond) */

#define AI(i, j) (((i) * m + (j)) * L)

typedef struct {
    int nn, its, lo, failed;
    double t, anorm, best, re, im;
} lane_state;

/* LAPACK's dlarfg on column k of every lane: H = I - tau v v^T with v[k+1] = 1 maps the column below the diagonal
 * to beta e_1; the norm is taken on the column scaled by its largest entry, so tiny columns (nearly one-hot
 * attention) neither underflow nor make tau overflow. Nothing below x0: H = I (tau = 0, beta = x0). */
static inline __attribute__((always_inline)) void column_reflector(int m, const double *restrict A, const int L,
                                                                    int k, double v[][LANES], double *tau,
                                                                    double *beta) {
    double amax[LANES], ssq[LANES], den[LANES];
    for (int l = 0; l < L; ++l) amax[l] = 0.0;
    for (int i = k + 1; i < m; ++i)
        for (int l = 0; l < L; ++l) {
            double a = fabs(A[AI(i, k) + l]);
            amax[l] = a > amax[l] ? a : amax[l];
        }
    for (int l = 0; l < L; ++l) {
        ssq[l] = 0.0; /* of the column below x0, scaled */
        amax[l] = amax[l] > 0.0 ? amax[l] : 1.0;
    }
    for (int i = k + 2; i < m; ++i)
        for (int l = 0; l < L; ++l) {
            double a = A[AI(i, k) + l] / amax[l];
            ssq[l] += a * a;
        }
    for (int l = 0; l < L; ++l) {
        double x0 = A[AI(k + 1, k) + l], xs = x0 / amax[l];
        double be = -copysign(amax[l] * sqrt(ssq[l] + xs * xs), x0);
        int zero = !(ssq[l] > 0.0);
        tau[l] = zero ? 0.0 : (be - x0) / be;
        den[l] = zero ? 1.0 : x0 - be;
        beta[l] = zero ? x0 : be;
    }
    for (int l = 0; l < L; ++l) v[k + 1][l] = 1.0;
    for (int i = k + 2; i < m; ++i)
        for (int l = 0; l < L; ++l) v[i][l] = A[AI(i, k) + l] / den[l];
}

static inline __attribute__((always_inline)) void hessenberg(int m, double *restrict A, const int L) {
    double v[MAXM][LANES], sj[MAXM][LANES];
    double tau[LANES], alpha[LANES];
    for (int k = 0; k < m - 2; ++k) {
        column_reflector(m, A, L, k, v, tau, alpha);
        /* left: H A on rows k+1.., columns k+1.. (column k becomes alpha e_1 exactly) */
        for (int j = k + 1; j < m; ++j)
            for (int l = 0; l < L; ++l) sj[j][l] = 0.0;
        for (int i = k + 1; i < m; ++i)
            for (int j = k + 1; j < m; ++j)
                for (int l = 0; l < L; ++l) sj[j][l] += v[i][l] * A[AI(i, j) + l];
        for (int j = k + 1; j < m; ++j)
            for (int l = 0; l < L; ++l) sj[j][l] *= tau[l];
        for (int i = k + 1; i < m; ++i)
            for (int j = k + 1; j < m; ++j)
                for (int l = 0; l < L; ++l) A[AI(i, j) + l] -= v[i][l] * sj[j][l];
        for (int l = 0; l < L; ++l) A[AI(k + 1, k) + l] = alpha[l];
        for (int i = k + 2; i < m; ++i)
            for (int l = 0; l < L; ++l) A[AI(i, k) + l] = 0.0;
        /* right: A H on all rows, columns k+1.. */
        for (int i = 0; i < m; ++i) {
            double s[LANES];
            for (int l = 0; l < L; ++l) s[l] = 0.0;
            for (int j = k + 1; j < m; ++j)
                for (int l = 0; l < L; ++l) s[l] += A[AI(i, j) + l] * v[j][l];
            for (int l = 0; l < L; ++l) s[l] *= tau[l];
            for (int j = k + 1; j < m; ++j)
                for (int l = 0; l < L; ++l) A[AI(i, j) + l] -= s[l] * v[j][l];
        }
    }
}

/* Householder reduction of symmetric matrices to tridiagonal form (LAPACK's dsytd2, full trailing block), all
 * lanes alike: per step p = tau T v, w = p - (tau/2)(p^T v) v, T -= v w^T + w v^T on the trailing block T; the
 * subdiagonal then holds the off-diagonal (beta of each reflector, as in hessenberg). */
static inline __attribute__((always_inline)) void tridiagonal(int m, double *restrict A, const int L) {
    double v[MAXM][LANES], w[MAXM][LANES];
    double tau[LANES], beta[LANES];
    for (int k = 0; k < m - 2; ++k) {
        column_reflector(m, A, L, k, v, tau, beta);
        /* p = tau T v (rows of T, contiguous), then w = p - (tau/2)(p^T v) v */
        double pv[LANES];
        for (int l = 0; l < L; ++l) pv[l] = 0.0;
        for (int i = k + 1; i < m; ++i) {
            double acc[LANES];
            for (int l = 0; l < L; ++l) acc[l] = 0.0;
            for (int j = k + 1; j < m; ++j)
                for (int l = 0; l < L; ++l) acc[l] += A[AI(i, j) + l] * v[j][l];
            for (int l = 0; l < L; ++l) {
                w[i][l] = tau[l] * acc[l];
                pv[l] += w[i][l] * v[i][l];
            }
        }
        for (int l = 0; l < L; ++l) pv[l] *= 0.5 * tau[l];
        for (int i = k + 1; i < m; ++i)
            for (int l = 0; l < L; ++l) w[i][l] -= pv[l] * v[i][l];
        for (int i = k + 1; i < m; ++i)
            for (int j = k + 1; j < m; ++j)
                for (int l = 0; l < L; ++l) A[AI(i, j) + l] -= v[i][l] * w[j][l] + w[i][l] * v[j][l];
        for (int l = 0; l < L; ++l) A[AI(k + 1, k) + l] = beta[l];
    }
}

static inline void record(lane_state *st, double re, double im) {
    double mod = im == 0.0 ? fabs(re) : hypot(re, im);
    if (mod > st->best) {
        st->best = mod;
        st->re = re;
        st->im = im;
    }
}

/* Deflate lane l (1x1 and 2x2 blocks at the bottom of its window) until it needs a QR step (returns 1 and sets
 * its window's start and the shifts' parameters x, y, w) or is done or failed (returns 0). neg[q][l]: whether
 * lane l's subdiagonal entry (q, q-1) is negligible (computed for all lanes at once by qr_phase). */
static void qr_one(int m, double *restrict A, lane_state *st, int maxit, int small);

static inline __attribute__((always_inline)) int settle(int m, double *restrict A, const int L, int l, int small,
                                                        lane_state *st, int maxit, double *x0, double *y0,
                                                        double *w0, unsigned char neg[][LANES]) {
    while (st->nn >= 0 && !st->failed) {
        int n1 = st->nn, q = n1;
        while (q >= 1 && !neg[q][l]) --q;
        if (q >= 1) A[AI(q, q - 1) + l] = 0.0;
        double x = A[AI(n1, n1) + l];
        if (q == n1) {
            record(st, x + st->t, 0.0);
            st->nn = n1 - 1;
            st->its = 0;
            continue;
        }
        if (small && q < n1 - 1 && n1 - q + 1 <= small && (q > 0 || n1 < m - 1)) {
            /* a small window (nearly one-hot attention splits into many): finish it alone, so the lockstep's
             * loops keep to the large windows; its eigenvalues are those of the block itself (a 2 x 2 window is
             * solved directly below, with the same arithmetic as alone) */
            int k = n1 - q + 1;
            double B[k * k];
            for (int i = 0; i < k; ++i)
                for (int j = 0; j < k; ++j) B[i * k + j] = A[AI(q + i, q + j) + l];
            lane_state s1 = *st;
            qr_one(k, B, &s1, maxit, small);
            st->best = s1.best;
            st->re = s1.re;
            st->im = s1.im;
            st->failed = s1.failed;
            st->nn = q - 1;
            st->its = 0;
            continue;
        }
        double y = A[AI(n1 - 1, n1 - 1) + l];
        double w = A[AI(n1, n1 - 1) + l] * A[AI(n1 - 1, n1) + l];
        if (q == n1 - 1) {
            double p = 0.5 * (y - x), qq = p * p + w, z = sqrt(fabs(qq));
            x += st->t;
            if (qq >= 0.0) {
                z = p + copysign(z, p);
                record(st, x + z, 0.0);
                record(st, z != 0.0 ? x - w / z : x + z, 0.0);
            } else {
                record(st, x + p, z);
            }
            st->nn = n1 - 2;
            st->its = 0;
            continue;
        }
        if (st->its >= maxit) {
            st->failed = 1;
            return 0;
        }
        if (st->its > 0 && st->its % 10 == 0) { /* exceptional shift */
            st->t += x;
            for (int i = 0; i <= n1; ++i) A[AI(i, i) + l] -= x;
            double ss = fabs(A[AI(n1, n1 - 1) + l]) + fabs(A[AI(n1 - 1, n1 - 2) + l]);
            x = 0.75 * ss;
            y = x;
            w = -0.4375 * ss * ss;
        }
        st->its++;
        st->lo = q;
        *x0 = x;
        *y0 = y;
        *w0 = w;
        return 1;
    }
    return 0;
}

/* QR iterations on a group of L lanes (states st[0..L)), finishing stragglers alone when few are left
 * (`alone` is the same function at one lane; NULL there). */
typedef void (*qr_fn)(int, double *restrict, lane_state *, int, int);

static inline __attribute__((always_inline)) void qr_phase(int m, double *restrict A, const int L,
                                                           lane_state *st, int maxit, int straggle, int small,
                                                           qr_fn alone) {
    double sp[LANES], sq[LANES], sr[LANES];
    double rx[LANES], ry[LANES], rz[LANES], rq[LANES], rr[LANES];
    int lo[LANES], start[LANES], nn[LANES];
    double spare[LANES];
    unsigned char neg[MAXM][LANES];
    for (;;) {
        if (alone) {
            int left = 0;
            for (int l = 0; l < L; ++l) left += st[l].nn >= 0 && !st[l].failed;
            if (left <= straggle) {
                /* finish each remaining lane alone: its leading (nn+1) block holds every eigenvalue not yet
                 * recorded (rows and columns below are deflated, and t carries its exceptional shifts) */
                for (int l = 0; l < L; ++l) {
                    if (st[l].nn < 0 || st[l].failed) continue;
                    int k = st[l].nn + 1;
                    double B[k * k];
                    for (int i = 0; i < k; ++i)
                        for (int j = 0; j < k; ++j) B[i * k + j] = A[AI(i, j) + l];
                    alone(k, B, &st[l], maxit, small);
                }
                return;
            }
        }
        /* which subdiagonal entries are negligible (EISPACK's test), for every lane at once: settle's scans read
         * this instead of the matrix (the entries it reads do not change until the next sweep) */
        int top = 0;
        for (int l = 0; l < L; ++l) top = st[l].nn > top ? st[l].nn : top;
        for (int q = 1; q <= top; ++q)
            for (int l = 0; l < L; ++l) {
                double ss = fabs(A[AI(q - 1, q - 1) + l]) + fabs(A[AI(q, q) + l]);
                ss = ss == 0.0 ? st[l].anorm : ss;
                neg[q][l] = fabs(A[AI(q, q - 1) + l]) + ss == ss;
            }
        int active = 0, kmin = m, kmax = -1, ilo = m;
        for (int l = 0; l < L; ++l) {
            int go = settle(m, A, L, l, small, &st[l], maxit, &sp[l], &sq[l], &sr[l], neg);
            if (go) {
                ++active;
                if (st[l].nn - 1 > kmax) kmax = st[l].nn - 1;
                if (st[l].lo < ilo) ilo = st[l].lo;
            }
            lo[l] = go ? st[l].lo : m;
            nn[l] = go ? st[l].nn : -1;
        }
        if (active == 0) return;
        /* where each lane's bulge starts: the largest mm in [lo, nn - 2] with two consecutive small subdiagonal
         * elements (EISPACK's test, scale-free, so the first column of (H - s1)(H - s2) is taken times h21:
         * Numerical Recipes divides by h21, which overflows when h21 is tiny beside the shifts), else lo.
         * One branch-free pass over the union of the windows serves every lane. */
        for (int l = 0; l < L; ++l) start[l] = lo[l];
        for (int mm = ilo + 1; mm <= kmax - 1; ++mm)
            for (int l = 0; l < L; ++l) {
                double z = A[AI(mm, mm) + l], r = sp[l] - z, s2 = sq[l] - z, h21 = A[AI(mm + 1, mm) + l];
                double h22 = A[AI(mm + 1, mm + 1) + l];
                double p = r * s2 - sr[l] + A[AI(mm, mm + 1) + l] * h21;
                double qv = h21 * (h22 - z - r - s2), rv = h21 * A[AI(mm + 2, mm + 1) + l];
                double u = fabs(A[AI(mm, mm - 1) + l]) * (fabs(qv) + fabs(rv));
                double vv = fabs(p) * (fabs(A[AI(mm - 1, mm - 1) + l]) + fabs(z) + fabs(h22));
                int here = (mm > lo[l]) & (mm <= nn[l] - 2) & (u + vv == vv);
                start[l] = here ? mm : start[l];
            }
        for (int l = 0; l < L; ++l) {
            if (nn[l] < 0) continue;
            int mm = start[l];
            double z = A[AI(mm, mm) + l], r = sp[l] - z, s2 = sq[l] - z, h21 = A[AI(mm + 1, mm) + l];
            double p = r * s2 - sr[l] + A[AI(mm, mm + 1) + l] * h21;
            double qv = h21 * (A[AI(mm + 1, mm + 1) + l] - z - r - s2), rv = h21 * A[AI(mm + 2, mm + 1) + l];
            double ss = fabs(p) + fabs(qv) + fabs(rv);
            if (!(ss > 0.0)) { /* all underflowed: any reflector is a valid similarity */
                p = 0.0;
                qv = 0.0;
                rv = 1.0;
                ss = 1.0;
            }
            sp[l] = p / ss;
            sq[l] = qv / ss;
            sr[l] = rv / ss;
            if (mm < kmin) kmin = mm;
        }
        /* one Francis sweep for every active lane, k over the union of their bulge paths */
        for (int k = kmin; k <= kmax; ++k) {
            int km1 = k > 0 ? k - 1 : 0;
            /* rows k, k+1, k+2 of column k-1 (the bulge); past the matrix's end a scratch row of zeros */
            double *restrict c0 = &A[AI(k, km1)], *restrict c1 = &A[AI(k + 1, km1)];
            double *restrict c2 = k + 2 < m ? &A[AI(k + 2, km1)] : spare;
            for (int l = 0; l < L; ++l) spare[l] = 0.0;
            for (int l = 0; l < L; ++l) { /* branch-free, so this loop vectorises too */
                int act = (k >= start[l]) & (k <= nn[l] - 1);
                int first = k == start[l], last = k == nn[l] - 1;
                double pb = c0[l], qb = c1[l], r2 = c2[l];
                double rb = last ? 0.0 : r2;
                double xb = fabs(pb) + fabs(qb) + fabs(rb);
                double xinv = 1.0 / (xb != 0.0 ? xb : 1.0);
                double p = first ? sp[l] : pb * xinv, qv = first ? sq[l] : qb * xinv, rv = first ? sr[l] : rb * xinv;
                double x = first ? 1.0 : xb;
                double nrm = sqrt(p * p + qv * qv + rv * rv);
                double ss = p < 0.0 ? -nrm : nrm;
                int ok = act & (ss != 0.0);
                double sinv = 1.0 / (ok ? ss : 1.0), pp = p + ss, pinv = 1.0 / (pp != 0.0 ? pp : 1.0);
                rx[l] = ok ? pp * sinv : 0.0;
                ry[l] = ok ? qv * sinv : 0.0;
                rz[l] = ok ? rv * sinv : 0.0;
                rq[l] = ok ? qv * pinv : 0.0;
                rr[l] = ok ? rv * pinv : 0.0;
                double flipped = lo[l] != start[l] ? -pb : pb;
                int inner = ok & !first;
                c0[l] = ok ? (first ? flipped : -ss * x) : pb;
                c1[l] = inner ? 0.0 : qb;
                c2[l] = (inner & !last) ? 0.0 : r2;
            }
            int three = k + 2 <= m - 1;
            int jmax = kmax + 1;
            if (three) {
                for (int j = k; j <= jmax; ++j)
                    for (int l = 0; l < L; ++l) {
                        double a0 = A[AI(k, j) + l], a1 = A[AI(k + 1, j) + l], a2 = A[AI(k + 2, j) + l];
                        double pj = a0 + rq[l] * a1 + rr[l] * a2;
                        A[AI(k + 2, j) + l] = a2 - pj * rz[l];
                        A[AI(k + 1, j) + l] = a1 - pj * ry[l];
                        A[AI(k, j) + l] = a0 - pj * rx[l];
                    }
            } else {
                for (int j = k; j <= jmax; ++j)
                    for (int l = 0; l < L; ++l) {
                        double a0 = A[AI(k, j) + l], a1 = A[AI(k + 1, j) + l];
                        double pj = a0 + rq[l] * a1;
                        A[AI(k + 1, j) + l] = a1 - pj * ry[l];
                        A[AI(k, j) + l] = a0 - pj * rx[l];
                    }
            }
            int ihi = k + 3 < m - 1 ? k + 3 : m - 1;
            if (ihi > kmax + 1) ihi = kmax + 1;
            if (three) {
                for (int i = ilo; i <= ihi; ++i)
                    for (int l = 0; l < L; ++l) {
                        double a0 = A[AI(i, k) + l], a1 = A[AI(i, k + 1) + l], a2 = A[AI(i, k + 2) + l];
                        double pi = rx[l] * a0 + ry[l] * a1 + rz[l] * a2;
                        A[AI(i, k + 2) + l] = a2 - pi * rr[l];
                        A[AI(i, k + 1) + l] = a1 - pi * rq[l];
                        A[AI(i, k) + l] = a0 - pi;
                    }
            } else {
                for (int i = ilo; i <= ihi; ++i)
                    for (int l = 0; l < L; ++l) {
                        double a0 = A[AI(i, k) + l], a1 = A[AI(i, k + 1) + l];
                        double pi = rx[l] * a0 + ry[l] * a1;
                        A[AI(i, k + 1) + l] = a1 - pi * rq[l];
                        A[AI(i, k) + l] = a0 - pi;
                    }
            }
        }
    }
}

static void qr_one(int m, double *restrict A, lane_state *st, int maxit, int small) {
    st->nn = m - 1;
    qr_phase(m, A, 1, st, maxit, 0, small, NULL);
}

static inline __attribute__((always_inline)) void init_states(int m, const double *restrict A, const int L,
                                                              lane_state *st, int used) {
    double a[LANES];
    for (int l = 0; l < L; ++l) a[l] = 0.0;
    for (int i = 0; i < m; ++i)
        for (int j = i > 0 ? i - 1 : 0; j < m; ++j)
            for (int l = 0; l < L; ++l) a[l] += fabs(A[AI(i, j) + l]);
    for (int l = 0; l < L; ++l) {
        memset(&st[l], 0, sizeof st[l]);
        st[l].anorm = a[l];
        st[l].best = -1.0;
        st[l].nn = l < used ? m - 1 : -1;
    }
}

/* First-order absolute error eps ||C||_F kappa(lambda) of lane l's computed eigenvalue lambda of largest modulus,
 * kappa = ||x|| ||y|| / |y^H x| from one step of inverse iteration, from the vector of ones, for its right and
 * left eigenvectors on the Hessenberg form H (an orthogonal similarity of C: the same kappa), shifted off lambda
 * by a few ulps of ||C|| (the same estimate as theory._attention._eigenvalue_error, which LAPACK's path uses).
 * One LU factorisation of H - sigma I with partial pivoting (one subdiagonal, so O(m^2)) serves both solves:
 * (H - sigma I) x = 1 and (H - sigma I)^H y = 1. Infinite when the eigenvectors are (numerically) orthogonal:
 * a (nearly) defective eigenvalue. W: (m, m) scratch; x, y, f: m each. */
/* |re| + |im|: pivots and scale factors as LAPACK's zgetrf and izamax choose them (hypot, 124 calls a matrix, cost
 * more than the rest of the estimate) */
static inline double cabs1(double complex z) { return fabs(creal(z)) + fabs(cimag(z)); }

/* Not vectorised: GCC 12's vectoriser turns these complex products into fused multiply-adds (vfmaddsub) despite
 * -ffp-contract=off, and only where its pattern matcher fires, so the estimate's last digits would depend on the
 * code around it (measured: up to 2e-15 relative between two builds). */
__attribute__((optimize("no-tree-vectorize")))
static double eigen_error(int m, const double *restrict H, const int L, int l, double re, double im, double fro,
                          double complex *restrict W, double complex *restrict x, double complex *restrict y,
                          double complex *restrict f) {
    double eps = DBL_EPSILON, nrm = fro > 1e-300 ? fro : 1e-300;
    double complex sigma = (re + 8 * eps * nrm) + I * (im + 8 * eps * nrm);
    double tiny = eps * nrm * DBL_EPSILON;
    unsigned char swapped[m];
    for (int i = 0; i < m; ++i)
        for (int j = i > 0 ? i - 1 : 0; j < m; ++j) W[i * m + j] = H[AI(i, j) + l] - (i == j ? sigma : 0.0);
    for (int i = 0; i < m; ++i) x[i] = 1.0;
    for (int k = 0; k < m - 1; ++k) { /* P_k then L_k: rows k, k+1 swapped if need be, row k+1 -= f_k row k */
        swapped[k] = cabs1(W[(k + 1) * m + k]) > cabs1(W[k * m + k]);
        if (swapped[k]) {
            for (int j = k; j < m; ++j) {
                double complex t = W[k * m + j];
                W[k * m + j] = W[(k + 1) * m + j];
                W[(k + 1) * m + j] = t;
            }
            double complex t = x[k];
            x[k] = x[k + 1];
            x[k + 1] = t;
        }
        if (W[k * m + k] == 0.0) W[k * m + k] = tiny;
        f[k] = W[(k + 1) * m + k] / W[k * m + k];
        for (int j = k + 1; j < m; ++j) W[(k + 1) * m + j] -= f[k] * W[k * m + j];
        x[k + 1] -= f[k] * x[k];
    }
    if (W[(m - 1) * m + m - 1] == 0.0) W[(m - 1) * m + m - 1] = tiny;
    for (int i = m - 1; i >= 0; --i) { /* U x = (the eliminated ones) */
        double complex acc = x[i];
        for (int j = i + 1; j < m; ++j) acc -= W[i * m + j] * x[j];
        x[i] = acc / W[i * m + i];
    }
    /* (H - sigma I)^H = U^H M^-H with M = L_{m-2} P_{m-2} ... L_0 P_0: solve U^H z = 1, then y = M^H z */
    for (int i = 0; i < m; ++i) {
        double complex acc = 1.0;
        for (int j = 0; j < i; ++j) acc -= conj(W[j * m + i]) * y[j];
        y[i] = acc / conj(W[i * m + i]);
    }
    for (int k = m - 2; k >= 0; --k) {
        y[k] -= conj(f[k]) * y[k + 1];
        if (swapped[k]) {
            double complex t = y[k];
            y[k] = y[k + 1];
            y[k + 1] = t;
        }
    }
    double nx = 0.0, ny = 0.0;
    double complex dot = 0.0;
    for (int i = 0; i < m; ++i) {
        double ax = cabs1(x[i]), ay = cabs1(y[i]);
        nx = ax > nx ? ax : nx;
        ny = ay > ny ? ay : ny;
    }
    double sx = 0.0, sy = 0.0; /* norms and y^H x of the vectors scaled by their largest entries (kappa is
                                * scale-free; the scaling only keeps the sums in range) */
    for (int i = 0; i < m; ++i) {
        double complex xi = x[i] / nx, yi = y[i] / ny;
        sx += creal(xi) * creal(xi) + cimag(xi) * cimag(xi);
        sy += creal(yi) * creal(yi) + cimag(yi) * cimag(yi);
        dot += conj(yi) * xi;
    }
    double kappa = sqrt(sx) * sqrt(sy) / cabs(dot);
    double err = eps * fro * kappa;
    return isfinite(err) ? err : INFINITY;
}

/* Lanes 0..used-1 of A get matrices g0.. of src (b, m, m) row-major, each scaled by a power of two 2^-e (exact) to
 * largest entry in [1/2, 1), as LAPACK's geev scales far from 1: products of entries then neither underflow nor
 * overflow where they matter. Unused lanes hold zeros. Reads are contiguous, one lane at a time. */
static inline __attribute__((always_inline)) void load_scaled(int m, const double *restrict src, int64_t g0,
                                                               int used, double *restrict A, const int L, int *e) {
    size_t mm2 = (size_t)m * m;
    for (int l = 0; l < L; ++l) {
        if (l >= used) {
            for (size_t i = 0; i < mm2; ++i) A[i * L + l] = 0.0;
            e[l] = 0;
            continue;
        }
        const double *x = &src[(size_t)(g0 + l) * mm2];
        double amax = 0.0;
        for (size_t i = 0; i < mm2; ++i) amax = fabs(x[i]) > amax ? fabs(x[i]) : amax;
        e[l] = 0;
        if (amax > 0.0 && isfinite(amax)) frexp(amax, &e[l]);
        double f1 = ldexp(1.0, -e[l] / 2), f2 = ldexp(1.0, -e[l] - (-e[l] / 2)); /* 2^-e, each representable */
        for (size_t i = 0; i < mm2; ++i) A[i * L + l] = x[i] * f1 * f2;
    }
}

/* The eigenvalue of largest modulus (re, im) of each of the b matrices C (b, m, m) row-major, and ok = 1 where
 * the QR iteration converged. `straggle`: finish a group's lanes alone once at most this many are active.
 * With err (else NULL), each eigenvalue's first-order absolute error estimate (eigen_error). Returns 0, -1 when m
 * is out of range, -2 when out of memory. */
int lockstep_top(int64_t b, int m, const double *restrict C, double *restrict re, double *restrict im,
                 uint8_t *restrict ok, double *restrict err, int straggle, int small) {
    if (m < 1 || m > MAXM) return -1;
    enum { L = LANES };
    double *A = aligned_alloc(64, sizeof(double) * ((size_t)m * m * L + 8));
    double *H = err ? aligned_alloc(64, sizeof(double) * ((size_t)m * m * L + 8)) : NULL;
    double complex *W = err ? malloc(sizeof(double complex) * ((size_t)m * m + 3 * m)) : NULL;
    if (!A || (err && (!H || !W))) {
        free(A);
        free(H);
        free(W);
        return -2;
    }
    int maxit = 30 * (m > 10 ? m : 10); /* per deflation, as LAPACK's dlahqr */
    lane_state st[LANES];
    for (int64_t g0 = 0; g0 < b; g0 += L) {
        int used = b - g0 < L ? (int)(b - g0) : L;
        int e[LANES];
        load_scaled(m, C, g0, used, A, L, e);
        double fro[LANES]; /* ||C||_F of each scaled matrix, for the error estimate */
        for (int l = 0; l < L; ++l) fro[l] = 0.0;
        if (err)
            for (int i = 0; i < m * m; ++i)
                for (int l = 0; l < L; ++l) fro[l] += A[(size_t)i * L + l] * A[(size_t)i * L + l];
        hessenberg(m, A, L);
        if (H) memcpy(H, A, sizeof(double) * (size_t)m * m * L);
        init_states(m, A, L, st, used);
        qr_phase(m, A, L, st, maxit, straggle, small, qr_one);
        for (int l = 0; l < used; ++l) {
            re[g0 + l] = ldexp(st[l].re, e[l]);
            im[g0 + l] = ldexp(st[l].im, e[l]);
            ok[g0 + l] = !st[l].failed;
            if (err)
                err[g0 + l] = st[l].failed ? INFINITY
                                           : ldexp(eigen_error(m, H, L, l, st[l].re, st[l].im, sqrt(fro[l]), W,
                                                               W + (size_t)m * m, W + (size_t)m * m + m,
                                                               W + (size_t)m * m + 2 * m), e[l]);
        }
    }
    free(A);
    free(H);
    free(W);
    return 0;
}

int lockstep_lanes(void) { return LANES; }

/* The largest eigenvalue of each of the b symmetric matrices G (b, m, m) row-major (symmetric to rounding: after
 * the reduction only the diagonal and the subdiagonal are read, so an asymmetry enters at its own size). The
 * symmetric Householder reduction above (tridiagonal) takes each G to tridiagonal form T, an orthogonal
 * similarity, and
 * bisection on Sturm counts (LDL^T of T - x I; Kahan's method, as LAPACK's dstebz) finds T's largest eigenvalue
 * to a few ulps of its magnitude, all lanes in lockstep. Backward stable: the error is ~eps ||G||, the same as a
 * symmetric eigensolver's. Returns 0, -1 when m is out of range, -2 when out of memory. */
int lockstep_sym_max(int64_t b, int m, const double *restrict G, double *restrict out) {
    if (m < 1 || m > MAXM) return -1;
    enum { L = LANES };
    double *A = aligned_alloc(64, sizeof(double) * ((size_t)m * m * L + 8));
    if (!A) return -2;
    for (int64_t g0 = 0; g0 < b; g0 += L) {
        int used = b - g0 < L ? (int)(b - g0) : L;
        int e[LANES];
        load_scaled(m, G, g0, used, A, L, e);
        tridiagonal(m, A, L);
        /* Gershgorin bounds of T, then bisection: lo stays below the largest eigenvalue, hi at or above it */
        double lo[LANES], hi[LANES];
        for (int l = 0; l < L; ++l) {
            lo[l] = INFINITY;
            hi[l] = -INFINITY;
        }
        for (int i = 0; i < m; ++i)
            for (int l = 0; l < L; ++l) {
                double d = A[AI(i, i) + l];
                double r = (i > 0 ? fabs(A[AI(i, i - 1) + l]) : 0.0) + (i + 1 < m ? fabs(A[AI(i + 1, i) + l]) : 0.0);
                lo[l] = d - r < lo[l] ? d - r : lo[l];
                hi[l] = d + r > hi[l] ? d + r : hi[l];
            }
        const double pivmin = DBL_MIN;
        for (int it = 0; it < 128; ++it) {
            int open = 0;
            double mid[LANES], below[LANES];
            for (int l = 0; l < L; ++l) {
                double scale = fabs(lo[l]) > fabs(hi[l]) ? fabs(lo[l]) : fabs(hi[l]);
                open |= hi[l] - lo[l] > 2 * DBL_EPSILON * scale;
                mid[l] = 0.5 * (lo[l] + hi[l]);
                below[l] = 0.0;
            }
            if (!open) break;
            double q[LANES];
            for (int l = 0; l < L; ++l) {
                double t = A[AI(0, 0) + l] - mid[l];
                t = fabs(t) < pivmin ? -pivmin : t;
                below[l] += t < 0.0;
                q[l] = t;
            }
            for (int i = 1; i < m; ++i)
                for (int l = 0; l < L; ++l) {
                    double off = A[AI(i, i - 1) + l];
                    double t = A[AI(i, i) + l] - mid[l] - off * off / q[l];
                    t = fabs(t) < pivmin ? -pivmin : t;
                    below[l] += t < 0.0;
                    q[l] = t;
                }
            for (int l = 0; l < L; ++l) { /* all m eigenvalues below mid: the largest is below it */
                int all = below[l] >= m;
                hi[l] = all ? mid[l] : hi[l];
                lo[l] = all ? lo[l] : mid[l];
            }
        }
        for (int l = 0; l < used; ++l) out[g0 + l] = ldexp(0.5 * (lo[l] + hi[l]), e[l]);
    }
    free(A);
    return 0;
}
