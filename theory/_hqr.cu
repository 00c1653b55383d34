/* The GPU eigenvalue kernels: one warp per matrix, the matrix in shared memory (theory/_hqr.py launches them).
 *
 * top_kernel: the eigenvalue of largest modulus of a small non-symmetric matrix: Householder reduction to upper
 *   Hessenberg form (reflectors as LAPACK's dlarfg, the column scaled by its largest entry), then the Francis
 *   double-shift QR of EISPACK's hqr with deflation and exceptional shifts, eigenvalues only (the shifts, the
 *   first column of each step and the deflation test in LAPACK dlahqr's scaled form, as the CPU kernel's).
 * sym_max_kernel: the largest eigenvalue of a symmetric matrix: the same reduction (tridiagonal for a symmetric
 *   matrix), then multisection on Sturm counts, 32 points per round, one per lane.
 * error_kernel: the first-order error estimate of top_kernel's eigenvalue, from the Hessenberg form top_kernel
 *   saved (an LU of H - sigma I in O(m^2), as the CPU kernel's eigen_errors).
 *
 * Work sharing: the per-step scalars (norms, shifts, reflectors, deflation tests) are computed by every lane of
 * the matrix's group (the whole warp at the default 32 lanes; LANES below) alike from shared memory, so the lanes
 * agree without communicating; the O(m) row and column updates of each step are spread over the lanes (PAR),
 * and __syncwarp orders each step's writes before the next step's reads. The same source compiles as plain C for
 * the CPU (HQR_CPU: one "lane" runs every index of a PAR loop), which is how CI, with no GPU, checks the
 * algorithm against LAPACK (tests/test_hqr.py).
 *
 * Each matrix is first scaled by a power of two to largest entry in [1/2, 1) (scale_unit, as the CPU kernel loads
 * its matrices): exact, so the answers are those of the matrix itself, scaled back (top_kernel's by the caller).
 * A matrix with a NaN or infinite entry is reported: not converged, NaN.
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
#define NLANES 1
#else
/* LANES: the lanes that share one matrix (32, 16 or 8; theory/_hqr.py passes -DLANES): a warp holds 32 / LANES
 * matrices, each group of LANES lanes its own, synchronised with a mask of its own lanes only (its matrix's
 * iterations run on while the other groups' matrices converge at their own pace). Which lane computes an entry
 * never changes its arithmetic: the results are bitwise the same for every LANES */
#ifndef LANES
#define LANES 32
#endif
#if LANES != 32 && LANES != 16 && LANES != 8
#error "LANES must be 32, 16 or 8"
#endif
#ifndef INFINITY  /* NVRTC has no math.h */
#define INFINITY __longlong_as_double(0x7ff0000000000000LL)
#endif
#ifndef NAN
#define NAN __longlong_as_double(0x7ff8000000000000LL)
#endif
#define DEV __device__ __forceinline__
#define PAR(j, lo, hi) for (int j = (lo) + lane; j < (hi); j += LANES)
#define SYNC() __syncwarp(group_mask())
#define LANE0 if (lane == 0)
#define NLANES LANES
/* the bits of this thread's group of LANES lanes in its warp */
DEV unsigned group_mask(void) {
    return LANES == 32 ? 0xffffffffu : ((1u << (LANES & 31)) - 1u) << ((threadIdx.x & 31) & ~(LANES - 1));
}
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

/* A (m x m, stride ld) times a power of two 2^-e (exact) with its largest entry in [1/2, 1), as the CPU kernel
 * loads its matrices and LAPACK's geev scales far from 1: squares and products of entries then neither underflow
 * nor overflow where they matter (unscaled, a matrix ~1e160 gave NaN and one ~1e-160 digits lost, marked
 * converged). Returns e; *bad = 1 (and A set to 0, nothing to compute) where an entry is NaN or infinite.
 * part: LANES doubles of scratch (each lane's largest entry, -1 for a non-finite one). */
DEV int scale_unit(double *A, int m, int ld, double *part, int lane, int *bad) {
    double amax = 0.0;
    int nonfinite = 0;
    PAR(idx, 0, m * m) {
        double a = fabs(AT(idx / m, idx % m));
        nonfinite |= !(a <= 1.7976931348623157e308);
        amax = a > amax ? a : amax;
    }
    part[lane] = nonfinite ? -1.0 : amax;
    SYNC();
    double top = 0.0;
    *bad = 0;
    for (int l = 0; l < NLANES; l++) {
        *bad |= part[l] < 0.0;
        top = part[l] > top ? part[l] : top;
    }
    SYNC();  /* part is scratch the next steps reuse */
    int e = 0;
    if (*bad) {
        PAR(idx, 0, m * m) AT(idx / m, idx % m) = 0.0;
    } else if (top > 0.0) {
        frexp(top, &e);
        const double f1 = ldexp(1.0, -e / 2), f2 = ldexp(1.0, -e - (-e / 2));  /* 2^-e, each representable */
        PAR(idx, 0, m * m) AT(idx / m, idx % m) = AT(idx / m, idx % m) * f1 * f2;
    }
    SYNC();
    return e;
}

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
    const double smlnum = 2.2250738585072014e-308 * (m / 2.220446049250313e-16);  /* DBL_MIN m / eps */
    while (nn >= 0) {
        int q = nn;
        while (q >= 1) {  /* a negligible subdiagonal: EISPACK's test, and dlahqr's (as the CPU kernel's) */
            double ss = fabs(AT(q - 1, q - 1)) + fabs(AT(q, q)), h = fabs(AT(q, q - 1));
            if (ss == 0.0) ss = anorm;
            if (h + ss == ss || h <= smlnum) break;
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
        double c, d;  /* the shifts c +- i d, as the CPU kernel's (theory/_lockstep.c: shifts, first_column) */
        if (its > 0 && its % 10 == 0) {  /* exceptional shift (EISPACK's, about the origin moved to x) */
            t += x;
            SYNC();
            PAR(i, 0, nn + 1) AT(i, i) -= x;
            SYNC();
            double ss = fabs(AT(nn, nn - 1)) + fabs(AT(nn - 1, nn - 2));
            c = 0.75 * ss;  /* EISPACK's x = y = 0.75 ss, w = -0.4375 ss^2: the pair 0.75 ss +- i sqrt(0.4375) ss */
            d = 0.6614378277661477 * ss;
        } else {
            /* the trailing 2 x 2 block's eigenvalues, from the block divided by the sum of its moduli (no product
             * of two entries: EISPACK's w underflowed below ~1e-154); a real pair replaced by twice the one
             * nearer the corner, as dlahqr does */
            double a = AT(nn - 1, nn - 1), b = AT(nn - 1, nn), e = AT(nn, nn - 1), f = x;
            double s = fabs(a) + fabs(b) + fabs(e) + fabs(f);
            if (s > 0.0) {  /* (all zero: c = d = 0) */
                double rs = recip(s);
                a = rs != 0.0 ? a * rs : a / s;
                b = rs != 0.0 ? b * rs : b / s;
                e = rs != 0.0 ? e * rs : e / s;
                f = rs != 0.0 ? f * rs : f / s;
            }
            double tr = 0.5 * (a + f), det = (a - tr) * (f - tr) - b * e, rt = sqrt(fabs(det));
            if (det >= 0.0) {
                c = tr * s;
                d = rt * s;
            } else {
                double r1 = tr + rt, r2 = tr - rt;
                c = (fabs(r1 - f) <= fabs(r2 - f) ? r1 : r2) * s;
                d = 0.0;
            }
        }
        its++;
        /* where the bulge starts: the largest mm in [q, nn - 2] with two consecutive small subdiagonal elements
         * (EISPACK's test on the first column of (H - s1)(H - s2) times h21), else q. The test's cheap unscaled
         * form underflows in windows below ~1e-154, so a start is taken only where vv, the side it compares
         * with, is at least DBL_MIN / eps (there an underflowed u is negligible beside it, as the test asks);
         * elsewhere the step starts at q, always valid (as the CPU kernel's) */
        const double tiny = 2.2250738585072014e-308 / 2.220446049250313e-16;
        int mm = nn - 2;
        for (; mm > q; mm--) {
            double z = AT(mm, mm), h21 = AT(mm + 1, mm), h22 = AT(mm + 1, mm + 1), e = z - c;
            double p = e * e + d * d + AT(mm, mm + 1) * h21;
            double qv = h21 * (z + h22 - c - c), rv = h21 * AT(mm + 2, mm + 1);
            double u = fabs(AT(mm, mm - 1)) * (fabs(qv) + fabs(rv));
            double vv = fabs(p) * (fabs(AT(mm - 1, mm - 1)) + fabs(z) + fabs(h22));
            if (u + vv == vv && vv >= tiny) break;
        }
        /* the first column from row mm, in dlahqr's scaled form: h21 and h11 - c divided by
         * s = |h11 - c| + d + |h21| before any product, then the column scaled to unit 1-norm (only its direction
         * is used). EISPACK's r s - w + h12 h21 multiplied a window's entries together: below ~1e-154 it
         * underflowed, the step made no progress, and graded matrices did not converge */
        double p, qv, rv;
        {
            double z = AT(mm, mm), h21 = AT(mm + 1, mm), ez = z - c;
            double s = fabs(ez) + d + fabs(h21), rs = recip(s);  /* s >= |h21| > 0 */
            double h = rs != 0.0 ? h21 * rs : h21 / s, es = rs != 0.0 ? ez * rs : ez / s;
            double ds = rs != 0.0 ? d * rs : d / s;
            p = h * AT(mm, mm + 1) + ez * es + d * ds;
            qv = h * (z + AT(mm + 1, mm + 1) - c - c);
            rv = h * AT(mm + 2, mm + 1);
            double ss = fabs(p) + fabs(qv) + fabs(rv);
            if (!(ss > 0.0)) {  /* all underflowed: any reflector is a valid similarity */
                p = 0.0;
                qv = 0.0;
                rv = 1.0;
                ss = 1.0;
            }
            scale3(&p, &qv, &rv, ss);
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

/* doubles of shared memory one matrix's error estimate takes: U (real and imaginary parts), 9 vectors of m */
DEV int error_doubles(int m) { return 2 * m * (m | 1) + 9 * m; }

#define HT(i, j) H[(i) * m + (j)]
#define UR(i, j) Ur[(i) * ld + (j)]
#define UI(i, j) Ui[(i) * ld + (j)]

/* First-order absolute error eps ||H||_F kappa(lambda) of the computed eigenvalue lambda = (lre, lim) of the
 * Hessenberg H (m x m, row stride m, read-only; an orthogonal similarity of C, so the same kappa and ||C||_F to
 * rounding): the CPU kernel's eigen_errors (theory/_lockstep.c) for one matrix, spread over the lanes. One step
 * of inverse iteration from the vector of ones for the right and left eigenvectors, x and y, through one LU
 * factorisation of H - sigma I with partial pivoting, sigma = lambda + 8 eps ||H||_F (1 + i) (off lambda by a
 * few ulps, so it is not exactly singular); kappa = ||x|| ||y|| / |y^H x|, infinite for a (numerically)
 * defective eigenvalue. A Hessenberg matrix's elimination step k needs only rows k (carried: c) and k + 1, so
 * the factorisation is O(m^2); the triangular solves go by columns, each step's updates over the lanes.
 * S: error_doubles(m) of scratch. The result is valid in lane 0. */
DEV double eigen_error(const double *H, int m, double lre, double lim, double *S, int lane) {
    const int ld = m | 1;
    const double eps = 2.220446049250313e-16;
    double *Ur = S, *Ui = S + m * ld, *cr = Ui + m * ld, *ci = cr + m, *xr = ci + m, *xi = xr + m;
    double *yr = xi + m, *yi = yr + m, *fr = yi + m, *fi = fr + m, *sw = fi + m;
    PAR(j, 0, m) {  /* ||H||_F: each lane its columns' sums of squares, added up below by every lane */
        double q = 0.0;
        for (int i = 0; i < m; i++) q += HT(i, j) * HT(i, j);
        fr[j] = q;
    }
    SYNC();
    double fro = 0.0;
    for (int j = 0; j < m; j++) fro += fr[j];
    fro = sqrt(fro);
    const double nrm = fro > 1e-300 ? fro : 1e-300;
    const double sr = lre + 8 * eps * nrm, si = lim + 8 * eps * nrm, tiny = eps * nrm * eps;
    SYNC();  /* every lane has read fr */
    PAR(j, 0, m) {
        cr[j] = HT(0, j) - (j == 0 ? sr : 0.0);
        ci[j] = j == 0 ? -si : 0.0;
        xr[j] = 1.0;
        xi[j] = 0.0;
    }
    SYNC();
    for (int k = 0; k < m - 1; k++) {  /* rows k (carried) and k + 1 of H - sigma I: pivot, keep U's row k */
        const double ckr = cr[k], cki = ci[k], hk = HT(k + 1, k);
        const int s = fabs(hk) > fabs(ckr) + fabs(cki);
        double ur = s ? hk : ckr, ui = s ? 0.0 : cki;  /* the pivot, and the entry its multiple eliminates */
        const double orr = s ? ckr : hk, oi = s ? cki : 0.0;
        if (ur == 0.0 && ui == 0.0) ur = tiny;
        const double den = ur * ur + ui * ui, f_r = (orr * ur + oi * ui) / den, f_i = (oi * ur - orr * ui) / den;
        const double a = xr[k], b = xi[k], c = xr[k + 1], d = xi[k + 1];
        const double pr = s ? c : a, pi = s ? d : b, qr = s ? a : c, qi = s ? b : d;
        SYNC();  /* every lane has read c[k], x[k] and x[k + 1] */
        LANE0 {
            UR(k, k) = ur;
            UI(k, k) = ui;
            fr[k] = f_r;
            fi[k] = f_i;
            sw[k] = s;
            xr[k] = pr;
            xi[k] = pi;
            xr[k + 1] = qr - (f_r * pr - f_i * pi);
            xi[k + 1] = qi - (f_r * pi + f_i * pr);
        }
        PAR(j, k + 1, m) {
            const double nr = HT(k + 1, j) - (j == k + 1 ? sr : 0.0), ni = j == k + 1 ? -si : 0.0;
            const double u_r = s ? nr : cr[j], u_i = s ? ni : ci[j], o_r = s ? cr[j] : nr, o_i = s ? ci[j] : ni;
            UR(k, j) = u_r;
            UI(k, j) = u_i;
            cr[j] = o_r - (f_r * u_r - f_i * u_i);
            ci[j] = o_i - (f_r * u_i + f_i * u_r);
        }
        SYNC();
    }
    LANE0 {
        const int zero = cr[m - 1] == 0.0 && ci[m - 1] == 0.0;
        UR(m - 1, m - 1) = zero ? tiny : cr[m - 1];
        UI(m - 1, m - 1) = ci[m - 1];
    }
    SYNC();
    for (int i = m - 1; i >= 0; i--) {  /* U x = (the eliminated ones), by columns */
        const double ur = UR(i, i), ui = UI(i, i), den = ur * ur + ui * ui, ar = xr[i], ai = xi[i];
        const double vr = (ar * ur + ai * ui) / den, vi = (ai * ur - ar * ui) / den;
        SYNC();  /* every lane has read x[i] */
        LANE0 {
            xr[i] = vr;
            xi[i] = vi;
        }
        PAR(j, 0, i) {
            const double u_r = UR(j, i), u_i = UI(j, i);
            xr[j] -= u_r * vr - u_i * vi;
            xi[j] -= u_r * vi + u_i * vr;
        }
        SYNC();
    }
    PAR(j, 0, m) {
        yr[j] = 1.0;
        yi[j] = 0.0;
    }
    SYNC();
    for (int i = 0; i < m; i++) {  /* U^H z = 1, by columns: divided by conj(U_ii), then conj(U_ij) z_i off row j */
        const double ur = UR(i, i), ui = -UI(i, i), den = ur * ur + ui * ui, ar = yr[i], ai = yi[i];
        const double vr = (ar * ur + ai * ui) / den, vi = (ai * ur - ar * ui) / den;
        SYNC();  /* every lane has read y[i] */
        LANE0 {
            yr[i] = vr;
            yi[i] = vi;
        }
        PAR(j, i + 1, m) {
            const double u_r = UR(i, j), u_i = -UI(i, j);
            yr[j] -= u_r * vr - u_i * vi;
            yi[j] -= u_r * vi + u_i * vr;
        }
        SYNC();
    }
    double e = 0.0;
    LANE0 {
        for (int k = m - 2; k >= 0; k--) {  /* y = M^H z: the eliminations and swaps, last first */
            const double f_r = fr[k], f_i = -fi[k], vr = yr[k + 1], vi = yi[k + 1];
            const double ar = yr[k] - (f_r * vr - f_i * vi), ai = yi[k] - (f_r * vi + f_i * vr);
            const int s = sw[k] != 0.0;
            yr[k] = s ? vr : ar;
            yi[k] = s ? vi : ai;
            yr[k + 1] = s ? ar : vr;
            yi[k + 1] = s ? ai : vi;
        }
        double nx = 0.0, ny = 0.0, sx = 0.0, sy = 0.0, dr = 0.0, di = 0.0;
        for (int i = 0; i < m; i++) {
            const double ax = fabs(xr[i]) + fabs(xi[i]), ay = fabs(yr[i]) + fabs(yi[i]);
            nx = ax > nx ? ax : nx;
            ny = ay > ny ? ay : ny;
        }
        for (int i = 0; i < m; i++) {  /* norms and y^H x of the vectors scaled by their largest entries */
            const double ar = xr[i] / nx, ai = xi[i] / nx, br = yr[i] / ny, bi = yi[i] / ny;
            sx += ar * ar + ai * ai;
            sy += br * br + bi * bi;
            dr += br * ar + bi * ai;
            di += br * ai - bi * ar;
        }
        e = eps * fro * (sqrt(sx) * sqrt(sy) / hypot(dr, di));
        e = fabs(e) <= 1.7976931348623157e308 ? e : INFINITY;
    }
    SYNC();  /* the scratch may be reused once lane 0 is done with it */
    return e;
}

#ifdef HQR_CPU

/* CPU builds of the same code, one matrix at a time: what CI checks against LAPACK */
int hqr_top_cpu(int64_t b, int m, const double *C, double *re, double *im, uint8_t *ok, double *err) {
    int ld = m | 1;
    double *A = malloc(sizeof(double) * warp_doubles(m));
    double *H = err ? malloc(sizeof(double) * (m * m + error_doubles(m))) : NULL;
    if (!A || (err && !H)) {
        free(A);
        free(H);
        return 1;
    }
    for (int64_t w = 0; w < b; w++) {
        for (int idx = 0; idx < m * m; idx++) AT(idx / m, idx % m) = C[w * m * m + idx];
        int bad, e = scale_unit(A, m, ld, A + m * ld + 2 * m, 0, &bad);
        hessenberg(A, A + m * ld, m, ld, 0);
        if (H)
            for (int idx = 0; idx < m * m; idx++) H[idx] = AT(idx / m, idx % m);
        ok[w] = (uint8_t)(hqr_top(A, m, ld, 0, re + w, im + w) && !bad);
        if (H) err[w] = ok[w] ? ldexp(eigen_error(H, m, re[w], im[w], H + m * m, 0), e) : INFINITY;
        re[w] = bad ? NAN : ldexp(re[w], e);
        im[w] = bad ? NAN : ldexp(im[w], e);
    }
    free(A);
    free(H);
    return 0;
}

int sym_max_cpu(int64_t b, int m, const double *G, double *out) {
    int ld = m | 1;
    double *A = malloc(sizeof(double) * warp_doubles(m));
    if (!A) return 1;
    for (int64_t w = 0; w < b; w++) {
        for (int idx = 0; idx < m * m; idx++) AT(idx / m, idx % m) = G[w * m * m + idx];
        int bad, e = scale_unit(A, m, ld, A + m * ld + 2 * m, 0, &bad);
        double top = sym_max(A, A + m * ld, m, ld, 0);
        out[w] = bad ? NAN : ldexp(top, e);
    }
    free(A);
    return 0;
}

#else

/* this group's matrix of the batch X (b, m, m), copied into its slot of the block's shared memory; sets *w to
 * its index and returns NULL past the batch. blockDim.x = LANES * (matrices per block) */
DEV double *warp_matrix(double *smem, long long b, int m, const double *__restrict__ X, int lane, long long *w) {
    const int ld = m | 1, slot = threadIdx.x / LANES;
    *w = (long long)blockIdx.x * (blockDim.x / LANES) + slot;
    if (*w >= b) return 0;
    double *A = smem + slot * warp_doubles(m);
    const double *src = X + *w * m * m;
    PAR(idx, 0, m * m) AT(idx / m, idx % m) = src[idx];
    SYNC();
    return A;
}

/* with save_h, each matrix's Hessenberg form goes to Hout (b, m, m) for error_kernel. The matrix is scaled by
 * 2^-exps[w] (scale_unit): (re, im), Hout and so error_kernel's estimate are of the scaled matrix, which the caller
 * scales back (theory/_hqr.py); a matrix with a NaN or infinite entry is not converged (ok 0) */
extern "C" __global__ void top_kernel(long long b, int m, const double *__restrict__ C, double *re, double *im,
                                      unsigned char *ok, int save_h, double *Hout, int *exps) {
    extern __shared__ double smem[];
    const int lane = threadIdx.x % LANES, ld = m | 1;
    long long w;
    double *A = warp_matrix(smem, b, m, C, lane, &w);
    if (!A) return;
    int bad, e = scale_unit(A, m, ld, A + m * ld + 2 * m, lane, &bad);
    hessenberg(A, A + m * ld, m, ld, lane);
    if (save_h) {
        PAR(idx, 0, m * m) Hout[w * m * m + idx] = AT(idx / m, idx % m);
        SYNC();
    }
    double r, i;
    int conv = hqr_top(A, m, ld, lane, &r, &i);
    if (lane == 0) {
        re[w] = bad ? NAN : r;
        im[w] = bad ? NAN : i;
        ok[w] = (unsigned char)(conv && !bad);
        exps[w] = e;
    }
}

/* the error estimate of each top eigenvalue (re, im) of H (b, m, m), the Hessenberg forms top_kernel saved */
extern "C" __global__ void error_kernel(long long b, int m, const double *__restrict__ H,
                                        const double *__restrict__ re, const double *__restrict__ im, double *err) {
    extern __shared__ double smem[];
    const int lane = threadIdx.x % LANES, slot = threadIdx.x / LANES;
    const long long w = (long long)blockIdx.x * (blockDim.x / LANES) + slot;
    if (w >= b) return;
    double e = eigen_error(H + w * m * m, m, re[w], im[w], smem + slot * error_doubles(m), lane);
    if (lane == 0) err[w] = e;
}

extern "C" __global__ void sym_max_kernel(long long b, int m, const double *__restrict__ G, double *out) {
    extern __shared__ double smem[];
    const int lane = threadIdx.x % LANES, ld = m | 1;
    long long w;
    double *A = warp_matrix(smem, b, m, G, lane, &w);
    if (!A) return;
    int bad, e = scale_unit(A, m, ld, A + m * ld + 2 * m, lane, &bad);
    double top = sym_max(A, A + m * ld, m, ld, lane);
    if (lane == 0) out[w] = bad ? NAN : ldexp(top, e);
}

#endif
