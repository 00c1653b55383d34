"""The CPU eigenvalue kernel (theory/_lockstep.c): 16 matrices in lockstep, Hessenberg + Francis double-shift QR.

Checked against LAPACK on attention families and edge cases, against its own error estimate on random inputs
(Hypothesis), for batch independence (a matrix's result is bit-for-bit the same alone or in any batch), for its
LAPACK fallback (counted) and for a clean fall back to LAPACK where no compiler is found."""

import math
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import theory as T
from theory import _hqr, _lockstep
from theory._attention import _eigenvalue_error, _restrict, _sigma, _top_eigenvalue

pytestmark = pytest.mark.skipif(not _lockstep.available(), reason=f"no kernel: {_lockstep.status()}")


def _lapack(C):
    lam = np.linalg.eigvals(C)
    return lam, np.abs(lam).max(-1)


def _c(P):
    return _restrict(P).numpy().copy()


FAMILIES = {
    "softmax beta 0.5": lambda g: T.softmax_attention((100,), 32, beta=0.5, generator=g),
    "softmax beta 4": lambda g: T.softmax_attention((100,), 32, beta=4.0, generator=g),
    "permutation-like": lambda g: 0.9 * torch.eye(32, dtype=torch.float64)[torch.rand(100, 32, generator=g)
                                                                            .argsort(-1)]
    + 0.1 * T.random_row_stochastic((100,), 32, generator=g),
    "sparse, often reducible": lambda g: T.random_row_stochastic((100,), 32, zero_prob=0.8, generator=g),
    "sinkhorn beta 2": lambda g: T.sinkhorn_attention((50,), 16, beta=2.0, generator=g),
    "n = 2": lambda g: T.softmax_attention((40,), 2, beta=4.0, generator=g),
    "n = 3": lambda g: T.softmax_attention((40,), 3, beta=4.0, generator=g),
    "n = 65": lambda g: T.softmax_attention((20,), 65, beta=2.0, generator=g),
    "uniform (C = 0)": lambda g: torch.full((4, 5, 5), 0.2, dtype=torch.float64),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_top_eigenvalue_matches_lapack_to_1e_12_on_well_conditioned_attention(family):
    C = _c(FAMILIES[family](T.make_generator(0)))
    re, im, ok = _lockstep.top_eigenvalue(C)
    assert ok.all()
    lam, ref = _lapack(C)
    np.testing.assert_allclose(np.hypot(re, im), ref, rtol=1e-12, atol=1e-14)
    # an eigenvalue, not only its modulus: the nearest LAPACK eigenvalue is the same number
    near = np.abs(lam - (re + 1j * im)[:, None]).min(-1)
    assert (near <= 1e-11 * np.maximum(ref, 1e-3)).all()


@pytest.mark.parametrize("C, expected", [
    (np.array([[[-3.0]]]), -3.0),                                   # m = 1
    (np.array([[[0.0, 1.0], [-1.0, 0.0]]]), 1j),                    # a complex pair (either sign)
    (np.array([[[2.0, 1.0], [0.0, -5.0]]]), -5.0),                  # triangular
    (np.zeros((1, 6, 6)), 0.0),                                     # zero matrix
    (np.roll(np.eye(7), 1, axis=1)[None], 1.0),                     # a 7-cycle: the 7th roots of unity
    (np.diag(np.ones(5), 1)[None] + 1e-3 * np.eye(6)[None], 1e-3),  # a defective (Jordan) block
])
def test_edge_cases(C, expected):
    re, im, ok = _lockstep.top_eigenvalue(C)
    assert ok.all()
    assert abs(np.hypot(re[0], im[0]) - abs(expected)) <= 1e-12 * max(abs(expected), 1)
    if np.imag(expected) == 0 and expected != 0 and C.shape[1] < 7:
        assert re[0] == pytest.approx(np.real(expected), rel=1e-12)


@given(n=st.integers(2, 40), beta=st.floats(0, 50), seed=st.integers(0, 2**31), scale=st.sampled_from(
    [1.0, 1e-150, 1e120]), zero_prob=st.sampled_from([0.0, 0.5, 0.9]))
def test_kernel_agrees_with_lapack_within_the_first_order_error_estimate(n, beta, seed, scale, zero_prob):
    """Random attention (softmax or sparse), scaled far from 1: each solver is within the first-order error
    estimate eps ||C|| kappa taken at its own eigenvalue of the truth, so the two are within the sum; no overflow,
    no NaN. (Not within the kernel's estimate alone: where the top eigenvalue is defective, as 0 of a nilpotent
    C from a reducible P (n = 5, seed 1581, zero_prob 0.9), LAPACK's answer is 1.6e-6 off, eps^(1/3) for a Jordan
    block of order 3, where the kernel's is 6e-17 and its estimate 2e-10; LAPACK's estimate there is 1.2e-5.)"""
    g = T.make_generator(seed)
    P = (T.softmax_attention((16,), n, beta=beta, generator=g) if zero_prob == 0
         else T.random_row_stochastic((16,), n, zero_prob=zero_prob, generator=g))
    C = _c(P) * scale
    re, im, ok = _lockstep.top_eigenvalue(C)
    assert ok.all() and np.isfinite(re).all() and np.isfinite(im).all()
    err = _top_eigenvalue(torch.from_numpy(C), errors=True)[1].numpy()  # the engine's path: this kernel's estimate
    lam, ref = _lapack(C)
    top = torch.from_numpy(lam[np.arange(len(lam)), np.abs(lam).argmax(-1)])
    ref_err = _eigenvalue_error(torch.from_numpy(C), top).numpy()  # LAPACK's path: the same estimate at its value
    got = np.hypot(re, im)
    with np.errstate(over="ignore"):  # an infinite estimate (numerically defective) leaves that matrix unchecked
        tol = 4 * (err + ref_err) + 1e-13 * np.abs(C).max((-1, -2)) * n
    assert (np.abs(got - ref) <= tol).all(), np.max(np.abs(got - ref) / np.maximum(tol, 1e-300))


def test_a_defective_top_eigenvalue_is_found_where_lapack_is_off_by_the_cube_root_of_eps():
    """The counterexample above, pinned: C is nilpotent (P's eigenvalues 1, 0, 0, 0, 0), 0 a Jordan block of order 3
    in it; the kernel's |lambda| is within its estimate of the truth 0, and LAPACK's within its own (how far off
    LAPACK lands depends on its build: 1.1e-6 with numpy's here, 1.6e-6 with torch's)."""
    P = T.random_row_stochastic((16,), 5, zero_prob=0.9, generator=T.make_generator(1581))
    assert torch.linalg.eigvals(P[0]).abs().sort().values[:-1].max() < 1e-5  # P itself: 1 and a defective 0
    C = _c(P)[:1]
    re, im, ok = _lockstep.top_eigenvalue(C)
    err = _top_eigenvalue(torch.from_numpy(C), errors=True)[1].numpy()
    lam, ref = _lapack(C)
    assert ok.all() and np.hypot(re, im)[0] <= err[0]
    top = torch.from_numpy(lam[np.arange(1), np.abs(lam).argmax(-1)])
    assert ref[0] <= _eigenvalue_error(torch.from_numpy(C), top).numpy()[0]


def _graded(n: int, m: int, span: float, seed: int) -> np.ndarray:
    """n random m x m matrices with entry (i, j) scaled by g_i g_j, g falling from 1 to 10^-span: the matrices on
    which LAPACK's dlahqr scales what EISPACK's hqr multiplies together."""
    g = 10.0 ** (-span * np.arange(m) / (m - 1))
    return np.random.default_rng(seed).standard_normal((n, m, m)) * g[:, None] * g[None, :]


@pytest.mark.parametrize("solver", ["cpu kernel", "gpu kernels' code on the cpu"])
@pytest.mark.parametrize("span", [100, 200, 300])
@pytest.mark.parametrize("m", [12, 20, 31])
def test_graded_matrices_converge_and_match_lapack(solver, span, m):
    # EISPACK's shifts and first column multiply a window's entries together, which underflows in windows below
    # ~1e-154: before the kernels took dlahqr's scaled forms (and its test for subdiagonals below DBL_MIN m / eps),
    # 9 of these 64 matrices at m = 12, span 100 (12 in the GPU kernels' code) and all 64 at m = 20 and 31 did not
    # converge (LAPACK got them, counted)
    C = _graded(64, m, span, seed=m + span)
    re, im, ok = _lockstep.top_eigenvalue(C) if solver == "cpu kernel" else _hqr.cpu_top(C)
    assert ok.all(), f"{(~ok).sum()} of 64 did not converge"
    ref = _lapack(C)[1]
    np.testing.assert_allclose(np.hypot(re, im), ref, rtol=1e-13, atol=0)


def test_a_matrix_gets_the_same_bits_alone_and_in_any_batch():
    # stragglers are finished one lane at a time, small windows in batches of their own merged back in each lane's
    # order, and the fused multiply-adds are written out (the compiler's contraction off), so a lane's arithmetic
    # never depends on its group-mates (nearly one-hot rows exercise both hand-offs)
    Cs = np.concatenate([_c(T.softmax_attention((40,), 32, beta=b, generator=T.make_generator(7)))
                         for b in (0.5, 1000.0)])
    _assert_same_bits_in_any_order_and_alone(Cs, np.random.default_rng(0).permutation(len(Cs)), every=9)


def _assert_same_bits_in_any_order_and_alone(Cs: np.ndarray, perm: np.ndarray, every: int) -> None:
    """The kernel's (re, im) of each matrix of ``Cs`` are bit-for-bit the same in the batch permuted by ``perm``
    and, for every ``every``-th matrix, alone."""
    re, im, _ = _lockstep.top_eigenvalue(Cs)
    rp, ip, _ = _lockstep.top_eigenvalue(Cs[perm])
    assert np.array_equal(rp, re[perm]) and np.array_equal(ip, im[perm])
    for i in range(0, len(Cs), every):
        r1, i1, _ = _lockstep.top_eigenvalue(Cs[i:i + 1])
        assert (r1[0], i1[0]) == (re[i], im[i])


def test_queued_small_windows_give_each_matrix_its_own_bits_and_its_largest_modulus():
    # nearly one-hot attention that is a product of short cycles splits into many windows of order 3-8, queued
    # from every lane of a group, dropped where a bound on their eigenvalues is below their lane's largest modulus
    # (with the lane's exceptional shifts added back: without, windows holding the largest eigenvalue were dropped
    # here) and solved 16 at a time; each window's eigenvalues are merged back into its own lane, in that lane's
    # order of records, so the eigenvalue returned is the largest and the same alone, in any batch, in any order
    rng = np.random.default_rng(11)
    n, Ps = 32, []
    for _ in range(48):
        perm, start = rng.permutation(n), 0
        P = np.zeros((n, n))
        while start < n:
            c = perm[start:start + int(rng.integers(3, 9))]
            P[c, np.roll(c, 1)] = 1.0
            start += len(c)
        Ps.append(0.999 * P + 0.001 * rng.dirichlet(np.ones(n), size=n))
    Cs = _c(torch.from_numpy(np.stack(Ps)))
    re, im, ok = _lockstep.top_eigenvalue(Cs)
    assert ok.all()
    lam = np.linalg.eigvals(Cs)
    np.testing.assert_allclose(np.hypot(re, im), np.abs(lam).max(-1), rtol=1e-9)
    _assert_same_bits_in_any_order_and_alone(Cs, rng.permutation(len(Cs)), every=5)


def test_a_tiny_window_holding_the_largest_eigenvalue_is_not_dropped():
    # a 3 x 3 window near 1e-25 beside a nilpotent block of order 1 (the scale) and an eigenvalue half its spectral
    # radius: the drop test's bound from B^8 underflowed there (||B||_F^16 ~ 1e-400), fell to its margin alone, a
    # twentieth of ||B||_F, and the window with the largest eigenvalue was dropped (a review); B is now scaled first
    for s in (1e-25, 1e-60, 1e-150):
        R = s * np.array([[0.5, 0.2, 0.9], [0.8, 0.3, 0.1], [0.0, 0.7, 0.4]])
        rho = np.abs(np.linalg.eigvals(R)).max()
        A = np.zeros((6, 6))
        A[0, 1] = 0.5
        A[2:5, 2:5] = R
        A[5, 5] = 0.5 * rho
        re, im, ok = _lockstep.top_eigenvalue(A[None])
        assert ok[0] and np.hypot(re[0], im[0]) == pytest.approx(rho, rel=1e-12, abs=0)


def test_a_tiny_window_gets_the_same_bits_alone_and_beside_group_mates_that_finish_at_once():
    # a window near 1e-290 meets dlahqr's test for negligible subdiagonals (below DBL_MIN m / eps): it used the
    # order of the block being solved, which is smaller when a lane is finished alone as a straggler, and whether
    # it is depends on its group-mates (here triangular, done at once): 54 of 300 such matrices differed (a
    # review's count). The threshold is now the whole matrix's, whichever way the lane is finished
    rng = np.random.default_rng(5)
    m, k = 31, 10
    for _ in range(40):
        H = np.triu(rng.standard_normal((m, m)), 1)
        H[:k, :k] = np.triu(rng.standard_normal((k, k)), -1) * 10.0 ** rng.uniform(-291, -288)
        H[k:, k:] = np.triu(rng.standard_normal((m - k, m - k)), 1)
        alone = _lockstep.top_eigenvalue(H[None])
        batch = _lockstep.top_eigenvalue(np.concatenate([H[None], np.triu(rng.standard_normal((7, m, m)))]))
        assert (alone[0][0], alone[1][0]) == (batch[0][0], batch[1][0])


def test_threads_run_it_concurrently_with_the_same_results():
    C = _c(T.softmax_attention((64,), 32, beta=4.0, generator=T.make_generator(2)))
    want = _lockstep.top_eigenvalue(C)[0]
    out = [None] * 4

    def work(i):
        out[i] = _lockstep.top_eigenvalue(C)[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(np.array_equal(o, want) for o in out)


def test_a_matrix_it_does_not_converge_on_goes_to_lapack_and_is_counted(monkeypatch):
    # the fallback code is shared by the CPU and CUDA kernels' paths (theory._attention._top_eigenvalue)
    C = torch.from_numpy(_c(T.softmax_attention((10,), 12, beta=4.0, generator=T.make_generator(4))))
    real = _lockstep.top_eigenvalue

    def failing(Cn, errors=False):  # the kernel's answer with two matrices marked as not converged, garbage values
        re, im, ok, *err = real(Cn, errors=errors)
        re[[2, 7]], ok[[2, 7]] = 123.0, False
        if errors:
            err[0][[2, 7]] = np.inf
        return (re, im, ok, *err)

    monkeypatch.setattr(_lockstep, "top_eigenvalue", failing)
    before = _hqr.fallbacks()
    top, err = _top_eigenvalue(C, errors=True)
    assert _hqr.fallbacks() - before == 2
    lam = torch.linalg.eigvals(C)
    torch.testing.assert_close(top.abs(), lam.abs().amax(-1), rtol=1e-12, atol=0)
    torch.testing.assert_close(err, _eigenvalue_error(C, top), rtol=1e-6, atol=0)  # LAPACK's path's estimate


def test_its_error_estimate_is_the_lapack_paths_estimate():
    # the same first-order estimate, computed on the Hessenberg form in O(m^2) instead of an LU of C
    for beta in (0.5, 4.0):
        C = torch.from_numpy(_c(T.softmax_attention((64,), 32, beta=beta, generator=T.make_generator(5))))
        re, im, ok, err = _lockstep.top_eigenvalue(C.numpy(), errors=True)
        ref = _eigenvalue_error(C, torch.complex(torch.from_numpy(re), torch.from_numpy(im))).numpy()
        np.testing.assert_allclose(err, ref, rtol=1e-8)
    # nearly one-hot rows: the same matrices are flagged as uncertain beyond 1e-6
    C = torch.from_numpy(_c(T.softmax_attention((256,), 32, beta=1000.0, generator=T.make_generator(5))))
    re, im, ok, err = _lockstep.top_eigenvalue(C.numpy(), errors=True)
    ref = _eigenvalue_error(C, torch.complex(torch.from_numpy(re), torch.from_numpy(im))).numpy()
    mod = np.hypot(re, im)
    flagged, flagged_ref = err / mod > 1e-6, ref / mod > 1e-6
    assert flagged.sum() >= 3 and (flagged == flagged_ref).mean() >= 0.98


def test_nan_input_is_reported_not_converged():
    C = np.full((3, 5, 5), np.nan)
    assert not _lockstep.top_eigenvalue(C)[2].any()


@pytest.mark.parametrize("m", [1, 2, 3, 7])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_one_non_finite_entry_is_reported_and_leaves_its_batch_alone(m, bad):
    # a NaN was dropped by the comparisons that pick the largest modulus (m <= 2 came back 0, ok) and an infinity
    # made its neighbours look negligible: the lane converged to a finite answer marked ok
    C = np.random.default_rng(m).standard_normal((37, m, m))
    clean = _lockstep.top_eigenvalue(C.copy(), errors=True)
    C[5, m // 2, m - 1] = bad
    C[20, m - 1, 0] = bad
    re, im, ok, err = _lockstep.top_eigenvalue(C, errors=True)
    assert list(np.flatnonzero(~ok)) == [5, 20]
    assert np.isnan(re[[5, 20]]).all() and np.isinf(err[[5, 20]]).all()
    keep = np.ones(37, dtype=bool)
    keep[[5, 20]] = False
    for got, ref in zip((re, im, ok, err), clean):
        np.testing.assert_array_equal(got[keep], ref[keep])  # the other lanes bit for bit as without them
    G = C + C.transpose(0, 2, 1)
    top = _lockstep.symmetric_max_eigenvalue(G)
    assert np.isnan(top[[5, 20]]).all() and np.isfinite(top[keep]).all()


def test_orders_beyond_the_kernel_use_lapack():
    with pytest.raises(ValueError, match="1 <= m <= 128"):
        _lockstep.top_eigenvalue(np.zeros((1, 129, 129)))
    P = T.softmax_attention((2,), 131, beta=1.0, generator=T.make_generator(0))
    torch.testing.assert_close(T.slem(P), torch.linalg.eigvals(_restrict(P)).abs().amax(-1), rtol=1e-12, atol=0)


PROBE = "from theory import _lockstep; print(_lockstep.available(), _lockstep.status())"


def _tiny_library(tmp_path, name: str, value: int) -> Path:
    """A shared library whose ``lockstep_lanes`` returns ``value``: a stand-in the loader tests can tell apart."""
    src = tmp_path / f"{name}.c"
    src.write_text(f"int lockstep_lanes(void) {{ return {value}; }}\n")
    out = tmp_path / f"{name}.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(out), str(src)], check=True)
    return out


@pytest.fixture
def loader(tmp_path, monkeypatch):
    """_lockstep's cache lookup with a configured cache and a temporary directory under tmp_path, and a compiler
    that copies a stand-in library (value 7) into place: (load, cache, shared temp dir, compile calls)."""
    import shutil

    good = _tiny_library(tmp_path, "good", 7)
    calls = []

    def compile_(cc, flags, target, source):  # noqa: ARG001 -- _compile's signature
        calls.append((tuple(flags), target))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot write {target.parent}: {exc}"
        shutil.copy(good, target)
        return None

    cache, shared = tmp_path / "cache", tmp_path / "tmp"
    shared.mkdir()
    monkeypatch.setenv("TSE_KERNEL_CACHE", str(cache))
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.setattr(_lockstep, "_compile", compile_)

    def load(name: str = "lockstep-key.so"):
        lib, why = _lockstep._load_or_compile("cc", ["-O3"], name, Path("kernel.c"))
        return (lib.lockstep_lanes() if lib is not None else None), why

    return load, cache, shared, calls


def _planted(shared: Path, name: str, tmp_path) -> Path:
    """A library called ``name`` in the per-user directory under the shared temporary directory ``shared``, left
    writable by everyone (what another user could have put there under the predictable name)."""
    d = shared / f"tse-sandbox-{os.getuid()}"
    d.mkdir()
    planted = d / name
    _tiny_library(tmp_path, "planted", 666).replace(planted)
    d.chmod(0o777)
    return planted


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX users")
def test_a_library_in_the_shared_temporary_directory_is_never_loaded_in_place_of_the_cache(loader, tmp_path,
                                                                                          monkeypatch):
    load, cache, shared, calls = loader
    _planted(shared, "lockstep-key.so", tmp_path)
    assert load() == (7, "")  # compiled into the configured cache, which is writable; the planted one not loaded
    assert [target for _, target in calls] == [cache / "lockstep-key.so"]
    # where the cache cannot be written, a temporary directory others may write to is refused
    monkeypatch.setenv("TSE_KERNEL_CACHE", "/proc/no-such-dir/cache")
    lanes, why = load()
    assert lanes is None and "no private temporary directory" in why


def test_an_unwritable_cache_uses_a_private_temporary_directory(loader, monkeypatch):
    load, _, shared, calls = loader
    monkeypatch.setenv("TSE_KERNEL_CACHE", "/proc/no-such-dir/cache")
    assert load() == (7, "")
    private = shared / f"tse-sandbox-{os.getuid()}"
    assert calls[-1][1] == private / "lockstep-key.so" and private.stat().st_mode & 0o777 == 0o700


def test_a_damaged_cached_library_is_compiled_again_with_the_same_flags(loader):
    load, cache, _, calls = loader
    cache.mkdir()
    (cache / "lockstep-key.so").write_bytes(b"")  # damaged from outside (this module writes atomically)
    assert load() == (7, "")
    assert calls == [(("-O3",), cache / "lockstep-key.so")]  # the same flags, the same place: not a fallback


@pytest.mark.parametrize("env, says", [({"TSE_EIGEN": "lapack"}, "TSE_EIGEN=lapack"),
                                       ({"CC": "/nonexistent/cc"}, "no C compiler")])
def test_without_the_kernel_theory_falls_back_to_lapack_and_says_why(env, says, tmp_path):
    env = {**os.environ, "TSE_KERNEL_CACHE": str(tmp_path), **env}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("False LAPACK") and says in out.stdout


@given(m=st.integers(1, 40), seed=st.integers(0, 2**31), scale=st.sampled_from([1.0, 1e-200, 1e150]),
       kind=st.sampled_from(["gram", "indefinite", "rank one", "diagonal"]))
def test_symmetric_largest_eigenvalue_matches_eigvalsh_to_eps_norm(m, seed, scale, kind):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(8, m, m, generator=g, dtype=torch.float64)
    G = {"gram": X @ X.mT, "indefinite": X + X.mT, "rank one": X[..., :1] @ X[..., :1].mT,
         "diagonal": torch.diag_embed(X[..., 0])}[kind] * scale
    got = _lockstep.symmetric_max_eigenvalue(G.numpy())
    ref = torch.linalg.eigvalsh(G)[..., -1].numpy()
    norm = torch.linalg.matrix_norm(G, 2).numpy()
    assert (np.abs(got - ref) <= 8 * m * np.finfo(float).eps * np.maximum(norm, 1e-300)).all()


@pytest.mark.parametrize("m", [5, 31])
def test_a_symmetric_matrix_gets_the_same_bits_alone_and_in_any_batch(m):
    # the bisection ran every lane until all had closed, so a closed lane went on halving its interval: 4 of 64
    # Gram matrices at m = 5 (magnitudes 1 and 1e-3 mixed) and 1-2 at m = 31 came out differently alone (a review)
    X = np.random.default_rng(3).standard_normal((64, m, m + 2))
    G = X @ X.transpose(0, 2, 1)
    G[::7] *= 1e-3
    batch = _lockstep.symmetric_max_eigenvalue(G)
    alone = np.array([_lockstep.symmetric_max_eigenvalue(G[i:i + 1])[0] for i in range(len(G))])
    assert np.array_equal(batch, alone)


@pytest.mark.parametrize("order", [2, 3])
def test_a_largest_eigenvalue_far_below_the_norm_is_not_moved_by_the_pivot_floor(order):
    # Sturm counts from the leading minors take |q_i| below pivmin as -pivmin; with a fixed pivmin 2^-60 the largest
    # eigenvalue ~2^-40 of this T (exactly tridiagonal: the reduction changes nothing) came out 9.094929770e-13
    # against 9.094947118e-13 (a review); pivmin relative to the point counted leaves it to the bisection's ulps
    import mpmath

    b = 2.0 ** -20
    T_ = np.diag([-1.0] * (order - 1) + [1e-20]) + np.diag([0.0] * (order - 2) + [b], 1) + np.diag(
        [0.0] * (order - 2) + [b], -1)
    with mpmath.workdps(50):
        exact = float(max(mpmath.eigsy(mpmath.matrix(T_.tolist()), eigvals_only=True)))
    got = _lockstep.symmetric_max_eigenvalue(T_[None])[0]
    assert got == pytest.approx(exact, rel=4e-16, abs=0)
    if order == 2:  # and a diagonal matrix's largest entry, far below the norm, exactly (the bracket starts there)
        assert _lockstep.symmetric_max_eigenvalue(np.diag([-1.0, 1e-25])[None])[0] == 1e-25


def test_sigma_and_stable_rank_use_it_and_agree_with_the_svd():
    P = T.softmax_attention((64,), 32, beta=4.0, generator=T.make_generator(3))
    C = _restrict(P)
    np.testing.assert_allclose(_sigma(P), torch.linalg.matrix_norm(C, 2), rtol=1e-13)
    X = torch.randn(16, 32, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    s = torch.linalg.svdvals(X)
    np.testing.assert_allclose(T.stable_rank(X), (s ** 2).sum(-1) / s[..., 0] ** 2, rtol=1e-12)


def test_an_unwritable_cache_falls_back_to_a_temporary_directory(tmp_path):
    env = {**os.environ, "TSE_KERNEL_CACHE": "/proc/no-such-dir/cache", "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("True lockstep kernel")
    assert list(tmp_path.glob("tse-sandbox-*/lockstep-*.so"))


def test_a_compiler_given_as_a_command_line_is_used_as_make_would(tmp_path, monkeypatch):
    # CC="ccache gcc" was looked up as one program named "ccache gcc": no compiler, LAPACK
    source = tmp_path / "k.c"
    source.write_text("int lockstep_lanes(void) { return 5; }\n")
    monkeypatch.setenv("CC", "env cc")  # env runs cc: a wrapper, as ccache is
    monkeypatch.setenv("TSE_KERNEL_CACHE", str(tmp_path / "cache"))
    lib, how = _lockstep.build(source, "k", [["-O0"]])
    assert lib is not None and lib.lockstep_lanes() == 5 and how == "env cc -O0"
    monkeypatch.setenv("CC", "/nonexistent/cc -O2")
    assert _lockstep.build(source, "k", [["-O0"]]) == (None, "no C compiler: '/nonexistent/cc -O2' not found")


def test_a_matrix_with_nan_is_nan_with_infinite_error_and_not_counted_as_a_fallback():
    # NaN or inf lanes went to LAPACK as "not converged": counted among the fallbacks (which README defines as
    # convergence failures), and MKL printed a DGEBAL parameter error
    from theory import _hqr
    from theory._attention import _top_eigenvalue

    C = torch.from_numpy(np.random.default_rng(3).standard_normal((4, 6, 6)))
    C[1, 2, 3], C[2, 0, 0] = math.nan, math.inf
    before = _hqr.fallbacks()
    top, err = _top_eigenvalue(C, errors=True)
    assert _hqr.fallbacks() == before
    assert top[1:3].isnan().all() and (err[1:3] == math.inf).all()
    want = torch.linalg.eigvals(C[[0, 3]]).abs().amax(-1)
    torch.testing.assert_close(top[[0, 3]].abs(), want, rtol=1e-12, atol=0)


def test_a_matrix_lapack_fails_on_goes_alone_to_numpy_and_never_aborts_the_batch(monkeypatch):
    # MKL's geev failed (LinAlgError) on graded matrices the kernels did not converge on (before their dlahqr
    # scaling): the whole batch raised
    from theory import _attention

    C = torch.from_numpy(np.random.default_rng(4).standard_normal((3, 5, 5)))
    real = torch.linalg.eigvals

    def fails_on_batches_and_the_second(A):
        if A.ndim == 3 or torch.equal(A, C[1]):
            raise torch.linalg.LinAlgError("The algorithm failed to converge")
        return real(A)

    monkeypatch.setattr(torch.linalg, "eigvals", fails_on_batches_and_the_second)
    top = _attention._lapack_top(C)
    want = torch.from_numpy(np.abs(np.linalg.eigvals(C.numpy())).max(-1))
    torch.testing.assert_close(top.abs(), want, rtol=1e-12, atol=0)  # the second from numpy's LAPACK
    monkeypatch.setattr(np.linalg, "eigvals", lambda A: (_ for _ in ()).throw(np.linalg.LinAlgError("no")))
    top = _attention._lapack_top(C)
    assert top[1].isnan() and not top[[0, 2]].isnan().any()


def test_fast_math_in_CC_does_not_remove_the_kernels_nan_checks(tmp_path):
    # CC="cc -ffast-math" compiled the finiteness checks away: a NaN matrix came back finite and marked converged
    probe = ("import numpy as np; from theory import _lockstep as L; C = np.random.default_rng(0).standard_normal("
             "(4, 6, 6)); C[1, 2, 3] = np.nan; re, im, ok = L.top_eigenvalue(C)[:3]; "
             "print(L.available(), bool(ok[1]), bool(np.isfinite(re[1])), bool(ok[[0, 2, 3]].all()))")
    env = {**os.environ, "TSE_KERNEL_CACHE": str(tmp_path), "CC": "cc -ffast-math"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=180,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "False", "True"]
