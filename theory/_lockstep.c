/* Lockstep eigenvalue of largest modulus of many small non-symmetric matrices (CPU).
 *
 * Built and loaded by theory/_lockstep.py (cc -O3 -march=native, cached); see its docstring for why.
 *
 * LANES matrices travel together, stored lane-innermost: entry (i, j) of lane l is A[(i*m + j)*LANES + l], so
 * every row and column update of the Householder reduction to Hessenberg form and of the Francis double-shift
 * QR sweeps (EISPACK's hqr, Numerical Recipes' form, eigenvalues only; the shifts and the first column of each
 * step in LAPACK dlahqr's scaled form, a real pair of shifts replaced by its double shift by the one nearer the
 * corner) is one loop over lanes of compile-time
 * length, which the compiler turns into SIMD instructions with the lane's scalars in registers. Each lane keeps
 * its own active window, shifts, deflations and iteration count; a lane whose step is elsewhere is masked by
 * an identity reflector. The loops run over the union of the lanes' windows, a valid similarity transform of
 * every whole matrix (entries outside a lane's window are never read for its eigenvalues). When few lanes are
 * left, each is finished alone by the same code at one lane, so the group never waits for its stragglers; a
 * small window that splits off a lane (nearly one-hot attention splits into many) is queued, and once the group
 * is done, dropped where it cannot hold its lane's largest eigenvalue, else solved in lockstep with other small
 * windows (solve_small).
 * A lane that does not converge within 30 m QR iterations is reported; the caller recomputes it with LAPACK.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef LANES
#define LANES 16
#endif
#define MAXM 128 /* largest order the kernel takes (the caller uses LAPACK beyond) */
#define SMALL_MAX 11 /* largest window queued (solve_small's powers hold SMALL_MAX^2 <= MAXM entries a lane) */

#define AI(i, j) (((i) * m + (j)) * L)

/* a * b + c. Where the target has a fused multiply-add (FP_FAST_FMA: -march=native on any recent x86 or ARM), one
 * rounding, written out so that the vector lane loops and the scalar path of a lane finished alone round alike
 * (the compiler's own contraction stays off: it would fuse some products and not others, differently in the two
 * paths). Elsewhere the two roundings of a * b + c, the same in both paths too. Used in the Hessenberg reduction
 * and the QR sweeps' updates (measured: the general kernel 0.88-0.90x its time, half the arithmetic issued); not in
 * the tridiagonal reduction, where it made the symmetric kernel 1.04-1.06x slower. */
#ifdef FP_FAST_FMA
#define FMA(a, b, c) fma(a, b, c)
#else
#define FMA(a, b, c) ((a) * (b) + (c))
#endif

typedef struct {
    int nn, its, lo, failed;
    int id;        /* the lane's place in its group (a lane finished alone, at one lane, keeps it) */
    int seq, bseq; /* records so far (each eigenvalue and each deferred window counts one), and best's place */
    double t, anorm, best, re, im;
    double smlnum; /* dlahqr's threshold for the whole matrix's order: a lane finished alone keeps it */
} lane_state;

/* The small windows deferred by a group's lanes (see settle): all of a group's, each padded with zeros to order
 * `small`, stored LANES to a chunk lane-innermost (window w in chunk w / LANES, lane w % LANES). When the group's
 * lanes are done, those that cannot hold their lane's eigenvalue of largest modulus are dropped, and the others
 * solved LANES at a time in lockstep and merged back into their lanes' records in the order they would have had
 * (solve_small). */
typedef struct {
    int small, count, cap, maxit, straggle;
    lane_state *group; /* the group's lanes */
    int *seq;          /* (cap) each window's place in its lane's records */
    unsigned char *keep; /* (cap) whether each window is solved (solve_small) */
    lane_state *st;    /* (cap) each window's lane state when it split off, its window the leading block */
    double *W;         /* (cap / LANES chunks, small, small, LANES) the windows */
    double *B;         /* (small, small, LANES) a batch being solved */
} small_queue;

/* A power of two p with s p in [1, 2) for normal s >= 0 below 2^1023 ([2, 4) above; 2^1023 for s below DBL_MIN;
 * 2^-1022 for inf or NaN):
 * an exact scale for quantities of size s, from s's exponent bits, so no division (measured: dividing made the
 * kernel 12-20% slower) and the lane loops still vectorise */
static inline __attribute__((always_inline)) double scale_of(double s) {
    uint64_t u;
    memcpy(&u, &s, sizeof u);
    int64_t e = 2046 - (int64_t)(u >> 52 & 0x7ff);
    uint64_t r = (uint64_t)(e < 1 ? 1 : e) << 52;
    double x;
    memcpy(&x, &r, sizeof x);
    return x;
}

/* 1 / scale_of(s), exactly (2^-1023, a subnormal, for s below DBL_MIN), also without a division */
static inline __attribute__((always_inline)) double unscale_of(double s) {
    uint64_t u;
    memcpy(&u, &s, sizeof u);
    int64_t e = 2046 - (int64_t)(u >> 52 & 0x7ff);
    int64_t b = 2046 - (e < 1 ? 1 : e);
    uint64_t r = b >= 1 ? (uint64_t)b << 52 : (uint64_t)1 << 51;
    double x;
    memcpy(&x, &r, sizeof x);
    return x;
}

/* LAPACK's dlarfg on column k of every lane: H = I - tau v v^T with v[k+1] = 1 maps the column below the diagonal
 * to beta e_1; the norm is taken on the column scaled by a power of two to largest entry in [1, 2), so tiny
 * columns (nearly one-hot attention) neither underflow nor make tau overflow. Nothing below x0: H = I (tau = 0, beta = x0). */
static inline __attribute__((always_inline)) void column_reflector(int m, const double *restrict A, const int L,
                                                                    int k, double v[][LANES], double *tau,
                                                                    double *beta) {
    double amax[LANES], ssq[LANES], sc[LANES], rden[LANES];
    for (int l = 0; l < L; ++l) amax[l] = 0.0;
    for (int i = k + 1; i < m; ++i)
        for (int l = 0; l < L; ++l) {
            double a = fabs(A[AI(i, k) + l]);
            amax[l] = a > amax[l] ? a : amax[l];
        }
    for (int l = 0; l < L; ++l) {
        ssq[l] = 0.0; /* of the column below x0, scaled */
        sc[l] = scale_of(amax[l]); /* a power of two (exact), so no division per entry */
    }
    for (int i = k + 2; i < m; ++i)
        for (int l = 0; l < L; ++l) {
            double a = A[AI(i, k) + l] * sc[l];
            ssq[l] += a * a;
        }
    for (int l = 0; l < L; ++l) {
        /* in the scaled column (beta's scaled value bs): 1 / (x0 - beta) itself overflows where the column is
         * subnormal; |xs - bs| >= |bs| >= the scaled largest entry, >= 1 (>= 2^-51 for a subnormal column) */
        double x0 = A[AI(k + 1, k) + l], xs = x0 * sc[l];
        double bs = -copysign(sqrt(ssq[l] + xs * xs), x0);
        int zero = !(ssq[l] > 0.0);
        tau[l] = zero ? 0.0 : (bs - xs) / bs;
        rden[l] = zero ? 0.0 : 1.0 / (xs - bs); /* one division per column, as dlarfg scales by 1 / (x0 - beta) */
        beta[l] = zero ? x0 : bs * unscale_of(amax[l]);
    }
    for (int l = 0; l < L; ++l) v[k + 1][l] = 1.0;
    for (int i = k + 2; i < m; ++i)
        for (int l = 0; l < L; ++l) v[i][l] = A[AI(i, k) + l] * sc[l] * rden[l]; /* the first product exact */
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
                for (int l = 0; l < L; ++l) sj[j][l] = FMA(v[i][l], A[AI(i, j) + l], sj[j][l]);
        for (int j = k + 1; j < m; ++j)
            for (int l = 0; l < L; ++l) sj[j][l] *= tau[l];
        for (int i = k + 1; i < m; ++i)
            for (int j = k + 1; j < m; ++j)
                for (int l = 0; l < L; ++l) A[AI(i, j) + l] = FMA(-v[i][l], sj[j][l], A[AI(i, j) + l]);
        for (int l = 0; l < L; ++l) A[AI(k + 1, k) + l] = alpha[l];
        for (int i = k + 2; i < m; ++i)
            for (int l = 0; l < L; ++l) A[AI(i, k) + l] = 0.0;
        /* right: A H on all rows, columns k+1.. */
        for (int i = 0; i < m; ++i) {
            double s[LANES];
            for (int l = 0; l < L; ++l) s[l] = 0.0;
            for (int j = k + 1; j < m; ++j)
                for (int l = 0; l < L; ++l) s[l] = FMA(A[AI(i, j) + l], v[j][l], s[l]);
            for (int l = 0; l < L; ++l) s[l] *= tau[l];
            for (int j = k + 1; j < m; ++j)
                for (int l = 0; l < L; ++l) A[AI(i, j) + l] = FMA(-s[l], v[j][l], A[AI(i, j) + l]);
        }
    }
}

/* Householder reduction of symmetric matrices to tridiagonal form (LAPACK's dsytd2 on the lower triangle), all
 * lanes alike: per step p = tau T v, w = p - (tau/2)(p^T v) v, T -= v w^T + w v^T on the trailing block T, of
 * which only the lower triangle (i >= j) is read and written (half the memory traffic of the full block; measured
 * with the load, 6.0 us a 32 x 32 matrix against 7.2); the subdiagonal then holds the off-diagonal (beta of each reflector, as in hessenberg). */
static inline __attribute__((always_inline)) void tridiagonal(int m, double *restrict A, const int L) {
    double v[MAXM][LANES], w[MAXM][LANES];
    double tau[LANES], beta[LANES];
    for (int k = 0; k < m - 2; ++k) {
        column_reflector(m, A, L, k, v, tau, beta);
        /* T v from the lower triangle: row i's part left of the diagonal adds to p_i, and (by symmetry) its
         * column's part below the diagonal: T_ij v_i adds to p_j */
        for (int i = k + 1; i < m; ++i)
            for (int l = 0; l < L; ++l) w[i][l] = 0.0;
        for (int i = k + 1; i < m; ++i) {
            double acc[LANES];
            for (int l = 0; l < L; ++l) acc[l] = A[AI(i, i) + l] * v[i][l];
            for (int j = k + 1; j < i; ++j)
                for (int l = 0; l < L; ++l) {
                    double a = A[AI(i, j) + l];
                    acc[l] += a * v[j][l];
                    w[j][l] += a * v[i][l];
                }
            for (int l = 0; l < L; ++l) w[i][l] += acc[l];
        }
        /* p = tau T v, then w = p - (tau/2)(p^T v) v */
        double pv[LANES];
        for (int l = 0; l < L; ++l) pv[l] = 0.0;
        for (int i = k + 1; i < m; ++i)
            for (int l = 0; l < L; ++l) {
                w[i][l] *= tau[l];
                pv[l] += w[i][l] * v[i][l];
            }
        for (int l = 0; l < L; ++l) pv[l] *= 0.5 * tau[l];
        for (int i = k + 1; i < m; ++i)
            for (int l = 0; l < L; ++l) w[i][l] -= pv[l] * v[i][l];
        for (int i = k + 1; i < m; ++i)
            for (int j = k + 1; j <= i; ++j)
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
        st->bseq = st->seq;
    }
    st->seq++;
}

/* The shifts of a QR step, c +- i d (d >= 0): the eigenvalues of the trailing 2 x 2 block [[a, b], [e, f]], as
 * LAPACK's dlahqr computes them, from the block scaled by about 1 / (|a| + |b| + |e| + |f|) first (a power of two:
 * exact), so that no product of two entries is formed (EISPACK's w = b e underflows in windows below ~1e-154).
 * A real pair is replaced by twice the one nearer f (d = 0), as dlahqr does (measured: about 4% less time at
 * beta 1000, the other families within the spread). */
static inline void shifts(double a, double b, double e, double f, double *c, double *d) {
    double rs = scale_of(fabs(a) + fabs(b) + fabs(e) + fabs(f)), s = 1.0 / rs; /* exact: powers of two */
    a *= rs;
    b *= rs;
    e *= rs;
    f *= rs;
    double tr = 0.5 * (a + f), det = (a - tr) * (f - tr) - b * e, rt = sqrt(fabs(det));
    if (det >= 0.0) {
        *c = tr * s;
        *d = rt * s;
    } else {
        double r1 = tr + rt, r2 = tr - rt;
        *c = (fabs(r1 - f) <= fabs(r2 - f) ? r1 : r2) * s;
        *d = 0.0;
    }
}

/* The first column (p, q, r) of (H - s1)(H - s2) below row mm - 1 for the shifts c +- i d, in dlahqr's form, its
 * direction only (the reflector is homogeneous in it): h21 and h11 - c are scaled by about 1 / s,
 * s = |h11 - c| + d + |h21|, before any product, so that a window's entries are never multiplied together, and the
 * column then to 1-norm in [1, 2). EISPACK's r s - w + h12 h21 was such a product: below ~1e-154 it underflowed,
 * the step made no progress or started at the wrong row, and 9 of 64 graded 12 x 12 matrices (entries spanning
 * 1e-100) and all 64 at 20 x 20 did not converge. (0, 0, 1) where everything underflowed (any reflector is a
 * valid similarity). */
static inline __attribute__((always_inline)) void first_column(double h11, double h12, double h21, double h22,
                                                              double h32, double c, double d, double *p,
                                                              double *q, double *r) {
    double e = h11 - c, rs = scale_of(fabs(e) + d + fabs(h21));
    double h = h21 * rs, es = e * rs, ds = d * rs;
    double v1 = h * h12 + e * es + d * ds, v2 = h * (h11 + h22 - c - c), v3 = h * h32;
    double t = fabs(v1) + fabs(v2) + fabs(v3), rt = scale_of(t);
    int some = t > 0.0;
    *p = some ? v1 * rt : 0.0;
    *q = some ? v2 * rt : 0.0;
    *r = some ? v3 * rt : 1.0;
}

/* Deflate lane l (1x1 and 2x2 blocks at the bottom of its window) until it needs a QR step (returns 1 and sets
 * its window's start and the shifts c +- i d) or is done or failed (returns 0). neg[q][l]: whether
 * lane l's subdiagonal entry (q, q-1) is negligible (computed for all lanes at once by qr_phase). */
static void defer_window(small_queue *queue, const double *restrict A, int m, const int L, int l, int lo, int k,
                         lane_state *st);

static inline __attribute__((always_inline)) int settle(int m, double *restrict A, const int L, int l, int small,
                                                        lane_state *st, int maxit, double *c0, double *d0,
                                                        unsigned char neg[][LANES], small_queue *queue) {
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
        if (queue && q < n1 - 1 && n1 - q + 1 <= small && (q > 0 || n1 < m - 1)) {
            /* a small window (nearly one-hot attention splits into many): its eigenvalues are those of the block
             * itself, solved later with other lanes' small windows (defer_window), so the lockstep's loops keep
             * to the large windows (a 2 x 2 window is solved directly below) */
            defer_window(queue, A, m, L, l, q, n1 - q + 1, st);
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
        /* the shifts c +- i d (d >= 0): a complex pair, or twice the same real shift */
        double c, d;
        if (st->its > 0 && st->its % 10 == 0) { /* exceptional shift (EISPACK's, about the origin moved to x) */
            st->t += x;
            for (int i = 0; i <= n1; ++i) A[AI(i, i) + l] -= x;
            double ss = fabs(A[AI(n1, n1 - 1) + l]) + fabs(A[AI(n1 - 1, n1 - 2) + l]);
            c = 0.75 * ss; /* EISPACK's x = y = 0.75 ss, w = -0.4375 ss^2: the pair 0.75 ss +- i sqrt(0.4375) ss */
            d = 0.6614378277661477 * ss;
        } else
            shifts(y, A[AI(n1 - 1, n1) + l], A[AI(n1, n1 - 1) + l], x, &c, &d);
        st->its++;
        st->lo = q;
        *c0 = c;
        *d0 = d;
        return 1;
    }
    return 0;
}

/* QR iterations on a group of L lanes (states st[0..L)), finishing stragglers alone when few are left
 * (`alone` is the same function at one lane; NULL there). */
typedef void (*qr_fn)(int, double *restrict, lane_state *, int, int, small_queue *);

static inline __attribute__((always_inline)) void qr_phase(int m, double *restrict A, const int L,
                                                           lane_state *st, int maxit, int straggle, int small,
                                                           qr_fn alone, small_queue *queue) {
    double sp[LANES], sq[LANES], sr[LANES], sc[LANES], sd[LANES];
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
                    alone(k, B, &st[l], maxit, small, queue);
                }
                return;
            }
        }
        /* which subdiagonal entries are negligible, for every lane at once: settle's scans read this instead of
         * the matrix (the entries it reads do not change until the next sweep). EISPACK's test, and LAPACK
         * dlahqr's: below DBL_MIN m / eps, which beside the matrix's largest entry in [1/2, 1) is far below its
         * rounding (without it, windows of subnormal numbers did not converge: graded 20 x 20 matrices spanning
         * 1e-200) */
        int top = 0;
        double anorm[LANES], smlnum[LANES]; /* the lanes' side by side, so this loop vectorises (from st it did
                                              * not) */
        for (int l = 0; l < L; ++l) {
            top = st[l].nn > top ? st[l].nn : top;
            anorm[l] = st[l].anorm;
            smlnum[l] = st[l].smlnum;
        }
        for (int q = 1; q <= top; ++q)
            for (int l = 0; l < L; ++l) {
                double ss = fabs(A[AI(q - 1, q - 1) + l]) + fabs(A[AI(q, q) + l]), h = fabs(A[AI(q, q - 1) + l]);
                ss = ss == 0.0 ? anorm[l] : ss;
                h = h <= smlnum[l] ? 0.0 : h;
                neg[q][l] = h + ss == ss;
            }
        int active = 0, kmin = m, kmax = -1, ilo = m;
        for (int l = 0; l < L; ++l) {
            int go = settle(m, A, L, l, small, &st[l], maxit, &sc[l], &sd[l], neg, queue);
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
         * elements, else lo. EISPACK's test on the first column times h21 (below: (p, qv, rv)), in its cheap
         * unscaled form, which underflows in windows below ~1e-154; so a start is taken only where vv, the side
         * the test compares with, is at least DBL_MIN / eps: there an underflowed u (< DBL_MIN) is negligible
         * beside it, as the test asks. Elsewhere the step starts at lo, always valid (measured: the scaled form
         * of first_column here made the kernel 5-9% slower). One branch-free pass over the union of the windows
         * serves every lane. */
        for (int l = 0; l < L; ++l) start[l] = lo[l];
        const double tiny = DBL_MIN / DBL_EPSILON;
        for (int mm = ilo + 1; mm <= kmax - 1; ++mm)
            for (int l = 0; l < L; ++l) {
                double z = A[AI(mm, mm) + l], h21 = A[AI(mm + 1, mm) + l], h22 = A[AI(mm + 1, mm + 1) + l];
                double e = z - sc[l], p = e * e + sd[l] * sd[l] + A[AI(mm, mm + 1) + l] * h21;
                double qv = h21 * (z + h22 - sc[l] - sc[l]), rv = h21 * A[AI(mm + 2, mm + 1) + l];
                double u = fabs(A[AI(mm, mm - 1) + l]) * (fabs(qv) + fabs(rv));
                double vv = fabs(p) * (fabs(A[AI(mm - 1, mm - 1) + l]) + fabs(z) + fabs(h22));
                int here = (mm > lo[l]) & (mm <= nn[l] - 2) & (u + vv == vv) & (vv >= tiny);
                start[l] = here ? mm : start[l];
            }
        for (int l = 0; l < L; ++l) {
            if (nn[l] < 0) continue;
            int mm = start[l];
            first_column(A[AI(mm, mm) + l], A[AI(mm, mm + 1) + l], A[AI(mm + 1, mm) + l], A[AI(mm + 1, mm + 1) + l],
                         A[AI(mm + 2, mm + 1) + l], sc[l], sd[l], &sp[l], &sq[l], &sr[l]);
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
                /* the column scaled by a power of two to 1-norm in [1, 2) (the first column comes so), so its
                 * norm neither overflows nor underflows; x undoes the scaling exactly (no division: the third
                 * division here was 2-3% of the time). The two reciprocals stay divisions: one reciprocal of
                 * ss pp for both raised the mean error against 50-digit arithmetic by 25-40% and the largest
                 * 4.6x at n = 8 (a review's measurement) */
                double xb = fabs(pb) + fabs(qb) + fabs(rb), xs = scale_of(xb);
                double p = first ? sp[l] : pb * xs, qv = first ? sq[l] : qb * xs, rv = first ? sr[l] : rb * xs;
                double x = first ? 1.0 : unscale_of(xb);
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
                        double pj = FMA(rr[l], a2, FMA(rq[l], a1, a0));
                        A[AI(k + 2, j) + l] = FMA(-pj, rz[l], a2);
                        A[AI(k + 1, j) + l] = FMA(-pj, ry[l], a1);
                        A[AI(k, j) + l] = FMA(-pj, rx[l], a0);
                    }
            } else {
                for (int j = k; j <= jmax; ++j)
                    for (int l = 0; l < L; ++l) {
                        double a0 = A[AI(k, j) + l], a1 = A[AI(k + 1, j) + l];
                        double pj = FMA(rq[l], a1, a0);
                        A[AI(k + 1, j) + l] = FMA(-pj, ry[l], a1);
                        A[AI(k, j) + l] = FMA(-pj, rx[l], a0);
                    }
            }
            int ihi = k + 3 < m - 1 ? k + 3 : m - 1;
            if (ihi > kmax + 1) ihi = kmax + 1;
            if (three) {
                for (int i = ilo; i <= ihi; ++i)
                    for (int l = 0; l < L; ++l) {
                        double a0 = A[AI(i, k) + l], a1 = A[AI(i, k + 1) + l], a2 = A[AI(i, k + 2) + l];
                        double pi = FMA(rz[l], a2, FMA(ry[l], a1, rx[l] * a0));
                        A[AI(i, k + 2) + l] = FMA(-pi, rr[l], a2);
                        A[AI(i, k + 1) + l] = FMA(-pi, rq[l], a1);
                        A[AI(i, k) + l] = a0 - pi;
                    }
            } else {
                for (int i = ilo; i <= ihi; ++i)
                    for (int l = 0; l < L; ++l) {
                        double a0 = A[AI(i, k) + l], a1 = A[AI(i, k + 1) + l];
                        double pi = FMA(ry[l], a1, rx[l] * a0);
                        A[AI(i, k + 1) + l] = FMA(-pi, rq[l], a1);
                        A[AI(i, k) + l] = a0 - pi;
                    }
            }
        }
    }
}

static void qr_one(int m, double *restrict A, lane_state *st, int maxit, int small, small_queue *queue) {
    st->nn = m - 1;
    qr_phase(m, A, 1, st, maxit, 0, small, NULL, queue);
}

/* Merge window w's record into its lane g: where its largest modulus beats the lane's, or ties it and comes first
 * in the lane's order (seq, its place there), as if the window had been solved when it split off. */
static void merge_window(lane_state *g, const lane_state *w, int seq) {
    g->failed |= w->failed;
    if (w->best > g->best || (w->best == g->best && seq < g->bseq)) {
        g->best = w->best;
        g->re = w->re;
        g->im = w->im;
        g->bseq = seq;
    }
}

/* Solve a batch (queue->B, its states in st[0..count), their places in seq) in lockstep (LANES lanes of order
 * queue->small, unused lanes empty; a window that splits again goes on in place, not deferred a second time), then
 * merge each window into its lane. A lane's result does not depend on the other windows in the batch. (Before, each
 * window was solved at once, alone, and its own small splits copied out again: the same algorithm, rounded
 * differently where a window split twice; measured, the batches made the kernel 0.96-0.97x its time on every
 * family.) */
static void solve_batch(small_queue *queue, lane_state *st, const int *seq, int count) {
    const int M = queue->small;
    for (int s = count; s < LANES; ++s) {
        memset(&st[s], 0, sizeof st[s]);
        st[s].nn = -1;
        for (int i = 0; i < M * M; ++i) queue->B[(size_t)i * LANES + s] = 0.0;
    }
    qr_phase(M, queue->B, LANES, st, queue->maxit, queue->straggle, 0, qr_one, NULL);
    for (int s = 0; s < count; ++s) merge_window(&queue->group[st[s].id], &st[s], seq[s]);
}

/* The group's queued windows, once its lanes are done. A window whose every eigenvalue, as the QR iteration would
 * compute it, is below its lane's largest modulus so far cannot change the lane's result, and is dropped. The window
 * holds W = B - t I (t: its lane's exceptional shifts, recorded eigenvalues being W's plus t); the QR iteration's
 * eigenvalues of W are those of W + E, ||E||_F <= c eps ||W||_F, so with F = max(||B||_F, ||W||_F) their moduli plus t
 * are at most rho(B + E) <= ||(B + E)^8||_F^(1/8) <= (||B^8||_F + 8 c eps F^8 (1 + c eps)^7)^(1/8). With B^8 from
 * three squarings of B scaled by a power of two to ||B||_F in [1, 2) (unscaled, the squares of B^8's entries
 * underflowed for ||B||_F below ~1e-19 and the bound was the margin alone, a twentieth of ||B||_F: a review's 6 x 6
 * matrix lost its largest eigenvalue that way), their rounding below 3 k eps ||B||_F^8 at order k <= 8, the bound
 * (||B^8||_F + 1e-10 F^8)^(1/8) covers c up to about 50000: every one of the 30 max(m, 10) steps allowed per
 * eigenvalue, each of at most 8 reflectors of ~eps ||W||. Nearly one-hot attention's windows are mostly nearly
 * nilpotent blocks beside a cycle's eigenvalue of modulus about 1: measured at beta 1000, 70% of the windows are
 * dropped (none at beta 4, where the last window holds the largest eigenvalue). Every decision is taken first,
 * from each lane's own records only (none of the windows solved yet), so it depends on its own lane only; a dropped
 * window that would not have converged is not reported (its eigenvalues are below the lane's answer, which stands).
 * The others are solved LANES at a time. */
static void solve_small(small_queue *queue) {
    const int M = queue->small, n = queue->count;
    for (int c0 = 0; c0 < n; c0 += LANES) {
        const double *W = queue->W + (size_t)c0 * M * M;
        double B[MAXM][LANES], P[MAXM][LANES], Q[MAXM][LANES], frob[LANES], frow[LANES], bound[LANES];
        double t0[LANES], sc[LANES];
        int k[LANES], in[LANES];
        for (int l = 0; l < LANES; ++l) {
            in[l] = c0 + l < n; /* the last chunk's other lanes hold stale windows: zeros instead */
            t0[l] = in[l] ? queue->st[c0 + l].t : 0.0;
            k[l] = in[l] ? queue->st[c0 + l].nn + 1 : 0;
            frob[l] = frow[l] = 0.0;
        }
        for (int i = 0; i < M; ++i)
            for (int j = 0; j < M; ++j)
                for (int l = 0; l < LANES; ++l) {
                    double w = in[l] ? W[(size_t)(i * M + j) * LANES + l] : 0.0;
                    double b = w + (i == j && i < k[l] ? t0[l] : 0.0); /* its rounding is part of E */
                    B[i * M + j][l] = b;
                    frow[l] = FMA(w, w, frow[l]);
                    frob[l] = FMA(b, b, frob[l]);
                }
        for (int l = 0; l < LANES; ++l) {
            frob[l] = sqrt(frob[l]);
            frow[l] = sqrt(frow[l]);
            sc[l] = scale_of(frob[l]); /* a power of two: ||B||_F sc in [1, 2) (exact) */
        }
        for (int i = 0; i < M * M; ++i)
            for (int l = 0; l < LANES; ++l) B[i][l] *= sc[l];
        /* P = B^2, Q = P^2, P = Q^2 (B^8 of the scaled B), all lanes at once (M * M <= MAXM entries) */
        for (int r = 0; r < 3; ++r) {
            double (*X)[LANES] = r == 0 ? B : r == 1 ? P : Q, (*Y)[LANES] = r == 1 ? Q : P;
            for (int i = 0; i < M; ++i)
                for (int j = 0; j < M; ++j) {
                    double acc[LANES];
                    for (int l = 0; l < LANES; ++l) acc[l] = 0.0;
                    for (int t = 0; t < M; ++t)
                        for (int l = 0; l < LANES; ++l) acc[l] = FMA(X[i * M + t][l], X[t * M + j][l], acc[l]);
                    for (int l = 0; l < LANES; ++l) Y[i * M + j][l] = acc[l];
                }
        }
        for (int l = 0; l < LANES; ++l) bound[l] = 0.0;
        for (int i = 0; i < M * M; ++i)
            for (int l = 0; l < LANES; ++l) bound[l] = FMA(P[i][l], P[i][l], bound[l]);
        for (int l = 0; l < LANES && in[l]; ++l) {
            double f = (frob[l] > frow[l] ? frob[l] : frow[l]) * sc[l], f2 = f * f, f4 = f2 * f2; /* F, scaled */
            double b8 = sqrt(bound[l]) + 1e-10 * (f4 * f4);
            double rho = sqrt(sqrt(sqrt(b8))) / sc[l]; /* the bound, unscaled (exact: sc a power of two) */
            double best = queue->group[queue->st[c0 + l].id].best;
            queue->keep[c0 + l] = !(best > 0.0 && rho * (1.0 + 1e-6) < best); /* NaN bound: kept */
        }
    }
    int count = 0, seq[LANES];
    lane_state st[LANES];
    for (int w = 0; w < n; ++w) {
        if (!queue->keep[w]) continue;
        const double *src = queue->W + (size_t)(w / LANES) * M * M * LANES + w % LANES;
        for (int i = 0; i < M * M; ++i) queue->B[(size_t)i * LANES + count] = src[(size_t)i * LANES];
        st[count] = queue->st[w];
        seq[count] = queue->seq[w];
        if (++count == LANES) {
            solve_batch(queue, st, seq, count);
            count = 0;
        }
    }
    if (count) solve_batch(queue, st, seq, count);
    queue->count = 0;
}

/* Queue lane l's window of order k starting at (lo, lo) of A (m x m, L lanes) with a copy of the lane's state (its
 * shifts' origin t, its thresholds and iteration count: the window is solved as it would have been at once); the
 * window takes one place in the lane's records. */
static void defer_window(small_queue *queue, const double *restrict A, int m, const int L, int l, int lo, int k,
                         lane_state *st) {
    const int M = queue->small, s = queue->count;
    lane_state w = *st;
    w.best = -1.0;
    w.re = w.im = 0.0;
    if (s == queue->cap) { /* not reached (a lane's windows are disjoint, each of order >= 3): solved at once */
        double B[k * k];
        for (int i = 0; i < k; ++i)
            for (int j = 0; j < k; ++j) B[i * k + j] = A[AI(lo + i, lo + j) + l];
        qr_one(k, B, &w, queue->maxit, 0, NULL);
        merge_window(st, &w, st->seq++);
        return;
    }
    double *W = queue->W + (size_t)(s / LANES) * M * M * LANES + s % LANES;
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < M; ++j) W[(size_t)(i * M + j) * LANES] = i < k && j < k ? A[AI(lo + i, lo + j) + l] : 0.0;
    w.nn = k - 1;
    queue->st[s] = w;
    queue->seq[s] = st->seq++;
    queue->count++;
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
        st[l].smlnum = DBL_MIN * (m / DBL_EPSILON);
        st[l].best = -1.0;
        st[l].id = l;
        st[l].nn = l < used ? m - 1 : -1;
    }
}

/* First-order absolute error eps ||C||_F kappa(lambda) of each lane's computed eigenvalue lambda of largest modulus,
 * kappa = ||x|| ||y|| / |y^H x| from one step of inverse iteration, from the vector of ones, for its right and
 * left eigenvectors on the Hessenberg form H (an orthogonal similarity of C: the same kappa), shifted off lambda
 * by a few ulps of ||C|| (the same estimate as theory._attention._eigenvalue_error, which LAPACK's path uses).
 * One LU factorisation of H - sigma I with partial pivoting (one subdiagonal, so O(m^2)) serves both solves:
 * (H - sigma I) x = 1 and (H - sigma I)^H y = 1; pivots by |re| + |im| as LAPACK's zgetrf. Infinite when the
 * eigenvectors are (numerically) orthogonal: a (nearly) defective eigenvalue.
 * All lanes at once, each lane's arithmetic on its own data (a lane's estimate does not depend on the others), in
 * loops over the lanes that the compiler vectorises (about 1.5 us a matrix; one lane at a time took 3.4).
 * H: the group's Hessenberg forms; (lre, lim): each lane's eigenvalue; fro: each lane's ||C||_F; out: the estimates
 * (of the scaled matrices); S: scratch of 2 m^2 LANES + 7 m LANES doubles. The LU keeps row k of U in S and carries
 * the row below it: a Hessenberg matrix needs only rows k and k+1 at step k. Complex products and quotients are
 * written out in real arithmetic (lanes are separate arrays of real and imaginary parts). */
static void eigen_errors(int m, const double *restrict H, const double *restrict lre, const double *restrict lim,
                         const double *restrict fro, double *restrict out, double *restrict S) {
    enum { L = LANES };
    double *restrict Ur = S, *restrict Ui = S + (size_t)m * m * L;
    double *restrict xr = Ui + (size_t)m * m * L, *restrict xi = xr + m * L, *restrict yr = xi + m * L;
    double *restrict yi = yr + m * L, *restrict fr = yi + m * L, *restrict fi = fr + m * L, *restrict sw = fi + m * L;
    double sr[L], si[L], tiny[L], cr[MAXM][L], ci[MAXM][L];
#define V(i) ((i) * L)
    for (int l = 0; l < L; ++l) {
        double nrm = fro[l] > 1e-300 ? fro[l] : 1e-300;
        sr[l] = lre[l] + 8 * DBL_EPSILON * nrm;
        si[l] = lim[l] + 8 * DBL_EPSILON * nrm;
        tiny[l] = DBL_EPSILON * nrm * DBL_EPSILON;
    }
    for (int j = 0; j < m; ++j)
        for (int l = 0; l < L; ++l) {
            cr[j][l] = H[AI(0, j) + l] - (j == 0 ? sr[l] : 0.0);
            ci[j][l] = j == 0 ? -si[l] : 0.0;
            xr[V(j) + l] = 1.0;
            xi[V(j) + l] = 0.0;
        }
    for (int k = 0; k < m - 1; ++k) { /* rows k (carried) and k+1 (of H - sigma I): pivot, keep U's row k */
        for (int l = 0; l < L; ++l) {
            double nk = H[AI(k + 1, k) + l];
            sw[V(k) + l] = fabs(nk) > fabs(cr[k][l]) + fabs(ci[k][l]);
        }
        for (int j = k; j < m; ++j)
            for (int l = 0; l < L; ++l) {
                int s = sw[V(k) + l] != 0.0;
                double nr = H[AI(k + 1, j) + l] - (j == k + 1 ? sr[l] : 0.0), ni = j == k + 1 ? -si[l] : 0.0;
                double ur = s ? nr : cr[j][l], ui = s ? ni : ci[j][l];
                cr[j][l] = s ? cr[j][l] : nr;
                ci[j][l] = s ? ci[j][l] : ni;
                Ur[AI(k, j) + l] = ur;
                Ui[AI(k, j) + l] = ui;
            }
        for (int l = 0; l < L; ++l) {
            int s = sw[V(k) + l] != 0.0;
            double ur = Ur[AI(k, k) + l], ui = Ui[AI(k, k) + l];
            int zero = ur == 0.0 && ui == 0.0;
            ur = zero ? tiny[l] : ur;
            Ur[AI(k, k) + l] = ur;
            double den = ur * ur + ui * ui, orr = cr[k][l], oi = ci[k][l];
            fr[V(k) + l] = (orr * ur + oi * ui) / den;
            fi[V(k) + l] = (oi * ur - orr * ui) / den;
            double a = xr[V(k) + l], b = xi[V(k) + l], c = xr[V(k + 1) + l], d = xi[V(k + 1) + l];
            double pr = s ? c : a, pi = s ? d : b, qr = s ? a : c, qi = s ? b : d;
            xr[V(k) + l] = pr;
            xi[V(k) + l] = pi;
            xr[V(k + 1) + l] = qr - (fr[V(k) + l] * pr - fi[V(k) + l] * pi);
            xi[V(k + 1) + l] = qi - (fr[V(k) + l] * pi + fi[V(k) + l] * pr);
        }
        for (int j = k + 1; j < m; ++j)
            for (int l = 0; l < L; ++l) {
                double ur = Ur[AI(k, j) + l], ui = Ui[AI(k, j) + l], f_r = fr[V(k) + l], f_i = fi[V(k) + l];
                cr[j][l] -= f_r * ur - f_i * ui;
                ci[j][l] -= f_r * ui + f_i * ur;
            }
    }
    for (int l = 0; l < L; ++l) {
        int zero = cr[m - 1][l] == 0.0 && ci[m - 1][l] == 0.0;
        Ur[AI(m - 1, m - 1) + l] = zero ? tiny[l] : cr[m - 1][l];
        Ui[AI(m - 1, m - 1) + l] = ci[m - 1][l];
    }
    for (int i = m - 1; i >= 0; --i) { /* U x = (the eliminated ones) */
        double ar[L], ai[L];
        for (int l = 0; l < L; ++l) {
            ar[l] = xr[V(i) + l];
            ai[l] = xi[V(i) + l];
        }
        for (int j = i + 1; j < m; ++j)
            for (int l = 0; l < L; ++l) {
                double ur = Ur[AI(i, j) + l], ui = Ui[AI(i, j) + l], vr = xr[V(j) + l], vi = xi[V(j) + l];
                ar[l] -= ur * vr - ui * vi;
                ai[l] -= ur * vi + ui * vr;
            }
        for (int l = 0; l < L; ++l) {
            double ur = Ur[AI(i, i) + l], ui = Ui[AI(i, i) + l], den = ur * ur + ui * ui;
            xr[V(i) + l] = (ar[l] * ur + ai[l] * ui) / den;
            xi[V(i) + l] = (ai[l] * ur - ar[l] * ui) / den;
        }
    }
    for (int i = 0; i < m; ++i) { /* U^H z = 1 */
        double ar[L], ai[L];
        for (int l = 0; l < L; ++l) {
            ar[l] = 1.0;
            ai[l] = 0.0;
        }
        for (int j = 0; j < i; ++j)
            for (int l = 0; l < L; ++l) { /* conj(U_ji) y_j */
                double ur = Ur[AI(j, i) + l], ui = -Ui[AI(j, i) + l], vr = yr[V(j) + l], vi = yi[V(j) + l];
                ar[l] -= ur * vr - ui * vi;
                ai[l] -= ur * vi + ui * vr;
            }
        for (int l = 0; l < L; ++l) { /* divided by conj(U_ii) */
            double ur = Ur[AI(i, i) + l], ui = -Ui[AI(i, i) + l], den = ur * ur + ui * ui;
            yr[V(i) + l] = (ar[l] * ur + ai[l] * ui) / den;
            yi[V(i) + l] = (ai[l] * ur - ar[l] * ui) / den;
        }
    }
    for (int k = m - 2; k >= 0; --k) /* y = M^H z */
        for (int l = 0; l < L; ++l) {
            double f_r = fr[V(k) + l], f_i = -fi[V(k) + l], vr = yr[V(k + 1) + l], vi = yi[V(k + 1) + l];
            double ar = yr[V(k) + l] - (f_r * vr - f_i * vi), ai = yi[V(k) + l] - (f_r * vi + f_i * vr);
            int s = sw[V(k) + l] != 0.0;
            yr[V(k) + l] = s ? vr : ar;
            yi[V(k) + l] = s ? vi : ai;
            yr[V(k + 1) + l] = s ? ar : vr;
            yi[V(k + 1) + l] = s ? ai : vi;
        }
    double nx[L], ny[L], sx[L], sy[L], dr[L], di[L];
    for (int l = 0; l < L; ++l) nx[l] = ny[l] = sx[l] = sy[l] = dr[l] = di[l] = 0.0;
    for (int i = 0; i < m; ++i)
        for (int l = 0; l < L; ++l) {
            double ax = fabs(xr[V(i) + l]) + fabs(xi[V(i) + l]), ay = fabs(yr[V(i) + l]) + fabs(yi[V(i) + l]);
            nx[l] = ax > nx[l] ? ax : nx[l];
            ny[l] = ay > ny[l] ? ay : ny[l];
        }
    for (int i = 0; i < m; ++i) /* norms and y^H x of the vectors scaled by their largest entries */
        for (int l = 0; l < L; ++l) {
            double ar = xr[V(i) + l] / nx[l], ai = xi[V(i) + l] / nx[l];
            double br = yr[V(i) + l] / ny[l], bi = yi[V(i) + l] / ny[l];
            sx[l] += ar * ar + ai * ai;
            sy[l] += br * br + bi * bi;
            dr[l] += br * ar + bi * ai;
            di[l] += br * ai - bi * ar;
        }
    for (int l = 0; l < L; ++l) {
        double e = DBL_EPSILON * fro[l] * (sqrt(sx[l]) * sqrt(sy[l]) / hypot(dr[l], di[l]));
        out[l] = isfinite(e) ? e : INFINITY;
    }
#undef V
}

/* Lanes 0..used-1 of A get matrices g0.. of src (b, m, m) row-major, each scaled by a power of two 2^-e (exact) to
 * largest entry in [1/2, 1), as LAPACK's geev scales far from 1: products of entries then neither underflow nor
 * overflow where they matter. Unused lanes hold zeros, and so does a lane whose matrix has a NaN or an infinite
 * entry (bad[l] = 1: it has no eigenvalues to compute, and left in, a NaN is dropped by every comparison and an
 * infinity makes its neighbours look negligible, so the lane would converge to a finite answer). The largest |entry|
 * and the NaN / infinity check are one pass of integer maxima over the entries' bits without their sign (ordered as
 * the magnitudes, infinity and NaN above every finite number), which vectorises (compared as doubles with NaN
 * checked, it ran one entry at a time: a fifth of the symmetric kernel's time); the entries are then written lane by
 * lane, read across the lanes. */
static inline __attribute__((always_inline)) void load_scaled(int m, const double *restrict src, int64_t g0,
                                                               int used, double *restrict A, const int L, int *e,
                                                               int *bad) {
    size_t mm2 = (size_t)m * m;
    const double *x[LANES];
    double f1[LANES], f2[LANES];
    int keep[LANES];
    for (int l = 0; l < L; ++l) {
        e[l] = 0;
        bad[l] = 0;
        keep[l] = l < used;
        x[l] = keep[l] ? &src[(size_t)(g0 + l) * mm2] : src; /* an unused lane reads a valid matrix, writes 0 */
        if (keep[l]) {
            uint64_t top = 0;
            for (size_t i = 0; i < mm2; ++i) {
                uint64_t u;
                memcpy(&u, &x[l][i], sizeof u);
                u &= 0x7fffffffffffffffULL;
                top = u > top ? u : top;
            }
            bad[l] = top >= 0x7ff0000000000000ULL; /* an infinity or a NaN */
            keep[l] = !bad[l];
            double amax;
            memcpy(&amax, &top, sizeof amax);
            if (keep[l] && amax > 0.0) frexp(amax, &e[l]);
        }
        f1[l] = ldexp(1.0, -e[l] / 2);
        f2[l] = ldexp(1.0, -e[l] - (-e[l] / 2)); /* 2^-e, each representable */
    }
    for (size_t i = 0; i < mm2; ++i)
        for (int l = 0; l < L; ++l) A[i * L + l] = keep[l] ? x[l][i] * f1[l] * f2[l] : 0.0;
}

/* The eigenvalue of largest modulus (re, im) of each of the b matrices C (b, m, m) row-major, and ok = 1 where
 * the QR iteration converged. `straggle`: finish a group's lanes alone once at most this many are active.
 * With err (else NULL), each eigenvalue's first-order absolute error estimate (eigen_errors). Returns 0, -1 when m
 * is out of range, -2 when out of memory. */
int lockstep_top(int64_t b, int m, const double *restrict C, double *restrict re, double *restrict im,
                 uint8_t *restrict ok, double *restrict err, int straggle, int small) {
    if (m < 1 || m > MAXM) return -1;
    enum { L = LANES };
    double *A = aligned_alloc(64, sizeof(double) * ((size_t)m * m * L + 8));
    double *H = err ? aligned_alloc(64, sizeof(double) * ((size_t)m * m * L + 8)) : NULL;
    double *W = err ? malloc(sizeof(double) * (2 * (size_t)m * m * LANES + 7 * (size_t)m * LANES)) : NULL;
    small = small > SMALL_MAX ? SMALL_MAX : small;
    small = small > m ? m : small;
    small = small < 3 ? 0 : small; /* no window of order 3 or more to queue: none is */
    /* the queue: every window a group's lanes can defer (disjoint, each of order >= 3: m / 3 a lane) */
    int cap = small ? LANES * (m / 3) : 0, chunks = (cap + LANES - 1) / LANES;
    size_t win = (size_t)small * small * LANES;
    double *S = small ? aligned_alloc(64, sizeof(double) * (win * (chunks + 1) + 8)) : NULL;
    lane_state *qst = small ? malloc(sizeof(lane_state) * cap) : NULL;
    int *qseq = small ? malloc(sizeof(int) * cap) : NULL;
    unsigned char *qkeep = small ? malloc(cap ? cap : 1) : NULL;
    if (!A || (err && (!H || !W)) || (small && (!S || !qst || !qseq || !qkeep))) {
        free(A);
        free(H);
        free(W);
        free(S);
        free(qst);
        free(qseq);
        free(qkeep);
        return -2;
    }
    int maxit = 30 * (m > 10 ? m : 10); /* per deflation, as LAPACK's dlahqr */
    lane_state st[LANES];
    small_queue sq = {.small = small, .count = 0, .cap = cap, .maxit = maxit, .straggle = straggle, .group = st,
                      .seq = qseq, .keep = qkeep, .st = qst, .W = S, .B = S ? S + win * chunks : NULL};
    for (int64_t g0 = 0; g0 < b; g0 += L) {
        int used = b - g0 < L ? (int)(b - g0) : L;
        int e[LANES], bad[LANES];
        load_scaled(m, C, g0, used, A, L, e, bad);
        double fro[LANES]; /* ||C||_F of each scaled matrix, for the error estimate */
        for (int l = 0; l < L; ++l) fro[l] = 0.0;
        if (err)
            for (int i = 0; i < m * m; ++i)
                for (int l = 0; l < L; ++l) fro[l] += A[(size_t)i * L + l] * A[(size_t)i * L + l];
        hessenberg(m, A, L);
        if (H) memcpy(H, A, sizeof(double) * (size_t)m * m * L);
        init_states(m, A, L, st, used);
        qr_phase(m, A, L, st, maxit, straggle, small, qr_one, small ? &sq : NULL);
        solve_small(&sq);
        double lre[LANES], lim[LANES], lerr[LANES];
        if (err) {
            for (int l = 0; l < L; ++l) {
                lre[l] = l < used ? st[l].re : 0.0;
                lim[l] = l < used ? st[l].im : 0.0;
                fro[l] = sqrt(fro[l]);
            }
            eigen_errors(m, H, lre, lim, fro, lerr, W);
        }
        for (int l = 0; l < used; ++l) {
            re[g0 + l] = bad[l] ? NAN : ldexp(st[l].re, e[l]);
            im[g0 + l] = bad[l] ? NAN : ldexp(st[l].im, e[l]);
            ok[g0 + l] = !st[l].failed && !bad[l]; /* a bad matrix goes to LAPACK, whose answer is then NaN */
            if (err) err[g0 + l] = st[l].failed || bad[l] ? INFINITY : ldexp(lerr[l], e[l]);
        }
    }
    free(A);
    free(H);
    free(W);
    free(S);
    free(qst);
    free(qseq);
    free(qkeep);
    return 0;
}

int lockstep_lanes(void) { return LANES; }

/* The largest eigenvalue of each of the b symmetric matrices G (b, m, m) row-major (symmetric to rounding: only its
 * lower triangle enters the reduction, so an asymmetry enters at its own size; the whole matrix sets the scale and
 * is checked for NaN). The
 * symmetric Householder reduction above (tridiagonal) takes each G to tridiagonal form T, an orthogonal
 * similarity, and bisection on Sturm counts (the signs of T - x I's leading minors, as in LAPACK's dstebz, whose
 * pivots are their ratios) finds T's largest eigenvalue, all lanes in lockstep, each lane's interval closed on its
 * own (to 2 eps of its magnitude). Backward stable: the error is ~eps ||G||, the same as a symmetric eigensolver's
 * (and no more relative to a small largest eigenvalue unless T's pivots do not cancel). Returns 0, -1 when m is out of range, -2 when out
 * of memory. */
int lockstep_sym_max(int64_t b, int m, const double *restrict G, double *restrict out) {
    if (m < 1 || m > MAXM) return -1;
    enum { L = LANES };
    double *A = aligned_alloc(64, sizeof(double) * ((size_t)m * m * L + 8));
    if (!A) return -2;
    for (int64_t g0 = 0; g0 < b; g0 += L) {
        int used = b - g0 < L ? (int)(b - g0) : L;
        int e[LANES], bad[LANES];
        load_scaled(m, G, g0, used, A, L, e, bad);
        tridiagonal(m, A, L);
        /* the bracket: the largest diagonal entry of T below (a Rayleigh quotient), Gershgorin's bound above; then
         * bisection keeps lo at or below the largest eigenvalue, hi at or above it */
        double lo[LANES], hi[LANES];
        for (int l = 0; l < L; ++l) {
            lo[l] = -INFINITY;
            hi[l] = -INFINITY;
        }
        for (int i = 0; i < m; ++i)
            for (int l = 0; l < L; ++l) {
                double d = A[AI(i, i) + l];
                double r = (i > 0 ? fabs(A[AI(i, i - 1) + l]) : 0.0) + (i + 1 < m ? fabs(A[AI(i + 1, i) + l]) : 0.0);
                lo[l] = d > lo[l] ? d : lo[l];
                hi[l] = d + r > hi[l] ? d + r : hi[l];
            }
        /* Sturm counts from the leading minors p_i = det(T_i - x I) themselves, p_i = (a_i - x) p_(i-1) -
         * b_i^2 p_(i-2), instead of Kahan's pivots q_i = p_i / p_(i-1): the same signs (q_i < 0 where p_i and p_(i-1)
         * differ in sign) without a division, which made the count's loop run at the divider's throughput
         * (measured: this bisection 2.4x faster). Each step's rounding is a relative perturbation of a_i - x and
         * b_i^2, so the count is exact for a matrix within a few eps ||T|| of T, as Kahan's is. As Kahan's pivmin, a
         * |q_i| below pivmin = max(2^-62 |x|, 2^-240) counts as -pivmin: a perturbation of a_i far below an ulp of x
         * (and of ||T||, whose largest entry is of order 1), which adds nothing that matters to the backward error
         * (a fixed 2^-60 did: it moved a largest eigenvalue 2^-40 beside -1 in its sixth digit). Then |q_i| >=
         * 2^-240, a q_i above ~2^73 (|a_i|, |b_i| <= ~m) is b_i^2 / q_(i-1) after a tiny one, and four steps change p
         * by at most about 2^+-960 (four tiny q need tiny b between them; a huge q follows a tiny one; a review's
         * instrumented worst cases reached 2^-960 and 2^281): p is rescaled by a power of two (exact) every fourth
         * step only, and never overflows or underflows. */
        double b2[MAXM][LANES];
        for (int l = 0; l < L; ++l) b2[0][l] = 0.0;
        for (int i = 1; i < m; ++i)
            for (int l = 0; l < L; ++l) b2[i][l] = A[AI(i, i - 1) + l] * A[AI(i, i - 1) + l];
        for (int it = 0; it < 256; ++it) { /* each halves the bracket: enough from ||T|| down to 2^-200 ||T|| */
            int open = 0, act[LANES];
            double mid[LANES], below[LANES], piv[LANES];
            for (int l = 0; l < L; ++l) {
                double scale = fabs(lo[l]) > fabs(hi[l]) ? fabs(lo[l]) : fabs(hi[l]);
                act[l] = hi[l] - lo[l] > 2 * DBL_EPSILON * scale;
                open |= act[l];
                mid[l] = 0.5 * (lo[l] + hi[l]);
                below[l] = 0.0;
                double pm = 0x1p-62 * fabs(mid[l]); /* pivmin: far below an ulp of mid (not fmax: a libm call) */
                piv[l] = pm > 0x1p-240 ? pm : 0x1p-240;
            }
            if (!open) break;
            double p1[LANES], p2[LANES]; /* p_(i-1), p_(i-2) */
            for (int l = 0; l < L; ++l) p1[l] = p2[l] = 1.0;
            for (int i = 0; i < m; ++i) {
                for (int l = 0; l < L; ++l) {
                    double p = (A[AI(i, i) + l] - mid[l]) * p1[l] - b2[i][l] * p2[l];
                    double floor = piv[l] * fabs(p1[l]);
                    p = fabs(p) < floor ? -copysign(floor, p1[l]) : p; /* q_i = -pivmin */
                    below[l] += (p < 0.0) != (p1[l] < 0.0);
                    p2[l] = p1[l];
                    p1[l] = p;
                }
                if ((i & 3) == 3)
                    for (int l = 0; l < L; ++l) {
                        double sc = scale_of(fabs(p1[l]));
                        p1[l] *= sc;
                        p2[l] *= sc;
                    }
            }
            for (int l = 0; l < L; ++l) { /* all m eigenvalues below mid: the largest is below it. A lane already
                                           * closed keeps its interval: its result does not depend on its group */
                int all = below[l] >= m;
                hi[l] = act[l] & all ? mid[l] : hi[l];
                lo[l] = act[l] & !all ? mid[l] : lo[l];
            }
        }
        for (int l = 0; l < used; ++l) out[g0 + l] = bad[l] ? NAN : ldexp(0.5 * (lo[l] + hi[l]), e[l]);
    }
    free(A);
    return 0;
}
