"""The GPU eigenvalue kernels (theory/_hqr.cu, launched by theory/_hqr.py): 32, 16 or 8 lanes per matrix.

Their source compiles as C for the CPU (one lane runs every index of a warp-parallel loop): that build is checked
against LAPACK here, on every machine; on a machine with a GPU the CUDA build is checked against the CPU build
and against LAPACK, and the engine's path against the CPU's."""

import shutil
import subprocess

import numpy as np
import pytest
import torch

import theory as T
from theory._attention import _restrict
from theory._hqr import cpu_symmetric_max, cpu_top

FAMILIES = {
    "softmax beta 0.5": lambda g: T.softmax_attention((200,), 32, beta=0.5, generator=g),
    "softmax beta 4": lambda g: T.softmax_attention((200,), 32, beta=4.0, generator=g),
    "sparse, often reducible": lambda g: T.random_row_stochastic((200,), 9, zero_prob=0.7, generator=g),
    "n = 2": lambda g: T.softmax_attention((50,), 2, beta=4.0, generator=g),
    "n = 3": lambda g: T.softmax_attention((50,), 3, beta=4.0, generator=g),
    "uniform (C = 0)": lambda g: torch.full((4, 5, 5), 0.2, dtype=torch.float64),
    "n = 65 (m = 64, the GPU kernels' largest)": lambda g: T.softmax_attention((20,), 65, beta=4.0, generator=g),
}


def _symmetric_cases(g):
    """Symmetric matrices the sigma computation meets (C^T C) and harder ones: indefinite, a clustered top,
    diagonal, sizes 1 to 64."""
    cases = []
    for name, make in FAMILIES.items():
        C = _restrict(make(g))
        cases.append((name + ", C^T C", C.mT @ C))
    for m in (1, 2, 3, 17, 64):
        A = torch.randn(30, m, m, generator=g, dtype=torch.float64)
        cases.append((f"indefinite m = {m}", A + A.mT))
    Q = torch.linalg.qr(torch.randn(30, 12, 12, generator=g, dtype=torch.float64))[0]
    lam = torch.linspace(-1, 1, 12, dtype=torch.float64).repeat(30, 1)
    lam[:, -2] = 1 - 1e-13  # two top eigenvalues 1e-13 apart
    cases.append(("clustered top", (Q * lam[:, None, :]) @ Q.mT))
    cases.append(("diagonal", torch.diag_embed(torch.randn(30, 9, generator=g, dtype=torch.float64))))
    return cases


SYMMETRIC = _symmetric_cases(T.make_generator(5))


@pytest.mark.parametrize("name,G", SYMMETRIC, ids=[c[0] for c in SYMMETRIC])
def test_kernel_symmetric_max_matches_lapack_to_eps_times_the_norm(name, G):
    top = cpu_symmetric_max(G.numpy())
    ref = torch.linalg.eigvalsh(G)[:, -1].numpy()
    norm = torch.linalg.matrix_norm(G, ord=2).numpy()
    m = G.shape[-1]
    assert (np.abs(top - ref) <= 4 * m * np.finfo(float).eps * np.maximum(norm, 1e-300)).all(), \
        np.max(np.abs(top - ref) / np.maximum(norm, 1e-300))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_kernel_top_eigenvalue_matches_lapack_on_well_conditioned_attention(family):
    P = FAMILIES[family](T.make_generator(0))
    C = _restrict(P).numpy().copy()
    re, im, ok = cpu_top(C)
    assert ok.all()
    lam = torch.linalg.eigvals(torch.from_numpy(C)).numpy()
    ref = np.abs(lam).max(-1)
    np.testing.assert_allclose(np.hypot(re, im), ref, rtol=1e-12, atol=1e-14)
    # and it is an eigenvalue, not only its modulus: the nearest LAPACK eigenvalue agrees
    near = np.abs(lam - (re + 1j * im)[:, None]).min(-1)
    assert (near <= 1e-11 * np.maximum(ref, 1e-3)).all()


def test_kernel_agrees_with_lapack_where_the_digits_are_trusted_at_beta_1000():
    # nearly one-hot rows: C nearly defective; where slem_with_error trusts 1e-6, the kernel must agree to it
    P = T.softmax_attention((200,), 32, beta=1000.0, generator=T.make_generator(1))
    C = _restrict(P).numpy().copy()
    re, im, ok = cpu_top(C)
    delta, err = T.slem_with_error(P)
    trusted = (err / delta <= 1e-6).numpy() & ok
    assert trusted.mean() > 0.8
    np.testing.assert_allclose(np.hypot(re, im)[trusted], delta.numpy()[trusted], rtol=2e-6)


def _softmax_c(count, beta, seed=5):
    return _restrict(T.softmax_attention((count,), 32, beta=beta, generator=T.make_generator(seed))).numpy().copy()


def test_kernel_error_estimate_is_the_lapack_paths_estimate():
    # the same first-order estimate as theory._attention._eigenvalue_error (an LU of C - sigma I), computed on the
    # Hessenberg form the kernel saves, in O(m^2) (what the CUDA build does on the GPU)
    from theory._attention import _eigenvalue_error

    for beta in (0.5, 4.0):
        C = _softmax_c(64, beta)
        re, im, ok, err = cpu_top(C, errors=True)
        ref = _eigenvalue_error(torch.from_numpy(C), torch.complex(torch.from_numpy(re), torch.from_numpy(im)))
        assert ok.all()
        np.testing.assert_allclose(err, ref.numpy(), rtol=1e-8)
    # nearly one-hot rows: the same matrices are flagged as uncertain beyond 1e-6
    C = _softmax_c(256, 1000.0)
    re, im, ok, err = cpu_top(C, errors=True)
    ref = _eigenvalue_error(torch.from_numpy(C), torch.complex(torch.from_numpy(re), torch.from_numpy(im))).numpy()
    mod = np.hypot(re, im)
    flagged, flagged_ref = err / mod > 1e-6, ref / mod > 1e-6
    assert flagged.sum() >= 3 and (flagged == flagged_ref).mean() >= 0.98
    # without errors the eigenvalues are the same bits; a zero C (uniform attention) has no trusted digits
    assert all(np.array_equal(u, v) for u, v in zip(cpu_top(C), (re, im, ok)))
    assert np.isinf(cpu_top(np.zeros((2, 5, 5)), errors=True)[3]).all()


@pytest.mark.parametrize("scale", [2.0 ** -1000, 2.0 ** -531, 2.0 ** 531, 2.0 ** 1000])  # 2^531 ~ 1e160
def test_kernels_scale_each_matrix_as_the_cpu_kernel_does(scale):
    # unscaled, the GPU source squared entries of a matrix ~1e160 into NaN and lost digits at ~1e-160 (marked
    # converged); scaled by a power of two, the answers are the scaled answers of the same matrices
    C = np.random.default_rng(3).standard_normal((50, 3, 3))
    re, im, ok, err = cpu_top(C, errors=True)
    re_s, im_s, ok_s, err_s = cpu_top(C * scale, errors=True)
    assert ok_s.all() and (ok_s == ok).all()
    np.testing.assert_array_equal(re_s, re * scale)  # the same arithmetic on the same scaled matrix: bitwise
    np.testing.assert_array_equal(im_s, im * scale)
    np.testing.assert_array_equal(err_s, err * scale)
    G = np.array([[[2.0, 1.0], [1.0, 2.0]]]) * scale
    assert cpu_symmetric_max(G) == 3 * scale


def test_kernels_report_a_matrix_with_a_nan_or_infinite_entry():
    C = np.random.default_rng(4).standard_normal((5, 4, 4))
    C[1, 2, 2], C[3, 0, 1] = np.nan, np.inf
    re, im, ok, err = cpu_top(C, errors=True)
    assert list(np.flatnonzero(~ok)) == [1, 3] and np.isnan(re[[1, 3]]).all() and np.isinf(err[[1, 3]]).all()
    top = cpu_symmetric_max(C + C.transpose(0, 2, 1))
    assert np.isnan(top[[1, 3]]).all() and np.isfinite(top[[0, 2, 4]]).all()


def test_the_gpu_outputs_are_scaled_back_by_each_matrix_exponent():
    # what top_eigenvalue_cuda does with top_kernel's outputs (of C 2^-e), checked here on CPU tensors
    from theory._hqr import _scaled_back

    re, im = torch.tensor([0.75, 0.5, 0.5, 0.25], dtype=torch.float64), torch.tensor([0.0, 0.25, 0.0, 0.0],
                                                                                    dtype=torch.float64)
    ok = torch.tensor([1, 1, 0, 1], dtype=torch.uint8)
    err = torch.tensor([1e-16, 2e-16, 3e-16, 4e-16], dtype=torch.float64)
    e = torch.tensor([1024, -1073, 0, 3], dtype=torch.int32)
    r, i, conv, er = _scaled_back(re, im, ok, err, e)
    assert r.tolist() == [0.75 * 2.0 ** 512 * 2.0 ** 512, 0.5 * 2.0 ** -1073, 0.5, 2.0]  # 2^1024 itself overflows
    assert i.tolist() == [0.0, 0.25 * 2.0 ** -1073, 0.0, 0.0] and conv.tolist() == [True, True, False, True]
    assert er[2] == np.inf and er[3] == 4e-16 * 8
    assert len(_scaled_back(re, im, ok, None, e)) == 3


def test_blocks_hold_whole_warps_of_matrices_within_their_shared_memory():
    from theory._hqr import LANE_CHOICES, SHARED_BUDGET, error_doubles, per_block, warp_doubles

    for lanes in LANE_CHOICES:
        for m in (1, 2, 31, 40, 64):
            for budget in (SHARED_BUDGET, 200 * 1024):
                count = per_block(m, lanes, budget)
                assert 1 <= count <= 16 * 32 // lanes
                assert count * 8 * warp_doubles(m) <= max(budget, 8 * warp_doubles(m))
                whole = 32 // lanes
                assert count % whole == 0 or count < whole, (lanes, m, budget, count)
    assert per_block(31, 32) == 5 and per_block(31, 16) == 4 and per_block(64, 16) == 1
    # the error estimate's larger scratch: two 31 x 31 matrices to a 48 KiB block; at m = 64 one matrix needs 70 KiB,
    # which the launch opts into
    assert per_block(31, 32, SHARED_BUDGET, error_doubles(31)) == 2
    assert per_block(64, 32, SHARED_BUDGET, error_doubles(64)) == 1 and 8 * error_doubles(64) > SHARED_BUDGET
    with pytest.raises(ValueError, match="lanes"):
        from theory._hqr import _load_gpu

        _load_gpu(12)


def _kernel_parameters() -> dict[str, list[str]]:
    """Each CUDA kernel's parameter types, as _hqr.cu declares them (without the names)."""
    import re

    from theory._hqr import _SOURCE

    found = re.findall(r'extern "C" __global__ void (\w+)\(([^)]*)\)', _SOURCE.read_text())
    def kind(param: str) -> str:  # "const double *__restrict__ C" -> "double*"
        words = param.replace("*", " ").replace("__restrict__", " ").replace("const", " ").split()[:-1]
        return " ".join(words) + "*" * param.count("*")

    return {name: [kind(p) for p in params.split(",")] for name, params in found}


@pytest.mark.parametrize("lanes", [32, 16, 8])
def test_every_launch_passes_its_kernel_the_parameters_it_declares(monkeypatch, lanes):
    """The host side of the GPU kernels without a GPU: a stand-in CuPy records each launch, and its arguments are
    checked against the kernel's signature in _hqr.cu, position by position (count, integer width, the element type
    and size of each array). A kernel that gains a parameter the launch does not pass, or a launch that calls the
    wrong kernel, fails here; on a GPU it would read past its arguments."""
    import sys
    from contextlib import nullcontext
    from types import SimpleNamespace

    from theory import _hqr

    calls = []

    class Kernel:  # cupy.RawKernel: records its launches
        def __init__(self, code, name, options=()):
            self.name, self.options, self.max_dynamic_shared_size_bytes = name, options, 48 * 1024

        def compile(self):
            pass

        def __call__(self, grid, block, args, shared_mem=0):
            calls.append((self.name, grid, block, args, shared_mem, self.options))

    cupy = SimpleNamespace(RawKernel=Kernel, __version__="stand-in", from_dlpack=lambda t: t,
                           cuda=SimpleNamespace(Stream=SimpleNamespace(from_external=lambda s: nullcontext()),
                                                Device=lambda index: nullcontext()))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: SimpleNamespace(cuda_stream=0))
    monkeypatch.setattr(_hqr, "_gpu", {})
    monkeypatch.setattr(_hqr, "_gpu_status", {})
    # CPU tensors stand for CUDA ones: everything else of _cuda_batch is kept
    monkeypatch.setattr(_hqr, "_cuda_batch", lambda X, lanes: (_hqr._load_gpu(lanes), X.contiguous()))
    b, m = 7, 5
    C = torch.randn(b, m, m, dtype=torch.float64)
    _hqr.top_eigenvalue_cuda(C, errors=True, lanes=lanes)
    _hqr.top_eigenvalue_cuda(C, lanes=lanes)
    _hqr.symmetric_max_cuda(C + C.mT, lanes=lanes)
    assert [c[0] for c in calls] == ["top_kernel", "error_kernel", "top_kernel", "sym_max_kernel"]
    declared = _kernel_parameters()
    assert set(declared) == set(_hqr._KERNELS)
    scalars = {"long long": np.int64, "int": np.int32}
    arrays = {"double*": torch.float64, "unsigned char*": torch.uint8, "int*": torch.int32}
    for name, grid, block, args, shared, options in calls:
        params = declared[name]
        assert len(args) == len(params), (name, params, args)
        assert args[0] == b and args[1] == m and args[2].shape == (b, m, m)  # (b, m, the matrices)
        for i, (param, arg) in enumerate(zip(params, args)):
            if param in scalars:
                assert type(arg) is scalars[param], (name, i, param, type(arg))
            else:
                assert isinstance(arg, torch.Tensor) and arg.dtype == arrays[param], (name, i, param, arg)
                assert arg.is_contiguous() and arg.numel() in (1, b, b * m * m), (name, i, arg.shape)
        assert f"-DLANES={lanes}" in options
        assert block[0] % 32 == 0 and block[0] // lanes * grid[0] >= b  # whole warps, every matrix covered
    top = [c[3] for c in calls if c[0] == "top_kernel"]
    assert top[0][6] == 1 and top[0][7].shape == (b, m, m) and top[1][6] == 0  # the Hessenberg form saved if asked
    assert calls[1][3][2] is top[0][7]  # the error kernel reads the form the first launch saved


def test_a_gpu_load_that_fails_unexpectedly_raises_records_nothing_and_is_tried_again(monkeypatch):
    """A CuPy whose import fails with something other than ImportError (a driver it cannot use, say) is raised to
    the caller, and no status is left half-recorded: the next call tries again and says why."""
    import importlib.abc
    import sys

    from theory import _hqr

    class Broken(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "cupy":
                raise RuntimeError("CUDA driver version is insufficient")

    monkeypatch.setattr(_hqr, "_gpu", {})
    monkeypatch.setattr(_hqr, "_gpu_status", {})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Broken(), *sys.meta_path])
    with pytest.raises(RuntimeError, match="driver"):
        _hqr.cuda_status()
    assert _hqr._gpu == {} and _hqr._gpu_status == {}
    sys.meta_path.pop(0)
    monkeypatch.setitem(sys.modules, "cupy", None)  # now plainly not importable
    assert not _hqr.cuda_available()
    assert "CuPy is not installed" in _hqr.cuda_status()


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs CUDA's compiler nvcc (not a GPU)")
@pytest.mark.parametrize("lanes", [32, 16, 8])
def test_the_cuda_build_of_the_source_compiles_without_a_gpu(lanes, tmp_path):
    # the C build above checks the algorithm on every machine; this compiles the CUDA build itself (as CuPy's
    # NVRTC does on a GPU machine, for an H100) wherever nvcc is installed, so that an edit made where no GPU is
    # lent cannot leave the GPU's kernels unbuildable, which would send every CUDA matrix to torch's solvers
    from theory import _hqr

    assert lanes in _hqr.LANE_CHOICES
    cmd = ["nvcc", "--std=c++17", f"-DLANES={lanes}", "-arch=sm_90", "-Werror", "all-warnings", "-c", "-x", "cu",
           str(_hqr._SOURCE), "-o", str(tmp_path / "hqr.o")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]


def _cupy_missing() -> bool:
    import importlib.util

    return importlib.util.find_spec("cupy") is None


# a GPU without CuPy runs on torch's solvers (tested by the engine's CUDA tests); the kernels' tests need CuPy, and
# where it is installed the kernels must build (cuda_available is asserted, not skipped on)
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available() or _cupy_missing(),
                               reason="needs a CUDA GPU and CuPy (pip install -e '.[gpu]')")


@needs_gpu
def test_slem_on_cuda_goes_through_the_kernel_and_agrees_with_the_cpu():
    from theory import _hqr

    assert _hqr.cuda_available(), _hqr.cuda_status()
    P = T.softmax_attention((512,), 32, beta=4.0, generator=T.make_generator(0))
    np.testing.assert_allclose(T.slem(P.cuda()).cpu(), T.slem(P), rtol=1e-12)


# the fallback of a matrix a kernel does not converge on is shared by both kernels' paths in
# theory._attention._top_eigenvalue: tests/test_lockstep.py checks it


def test_fig3_reports_its_eigen_solver_and_fallbacks():
    from simulations.engine.config import Fig3Config
    from simulations.studies.fig3 import simulate_fig3

    res = simulate_fig3(Fig3Config(tokens=5, width=4, depth=2, trials=8, rng_block=8, chunk=8, device="cpu"),
                        progress=False)
    from theory import _lockstep

    solver = res.checks["eigen_solver"]
    assert solver["lapack_fallbacks"] == 0
    assert solver["general"].startswith("lockstep CPU kernel" if _lockstep.available() else "LAPACK geev")


@needs_gpu
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_cuda_kernel_matches_lapack_and_the_cpu_build(family):
    from theory import _hqr

    assert _hqr.cuda_available(), _hqr.cuda_status()
    C = _restrict(FAMILIES[family](T.make_generator(2)))
    re, im, ok = (t.cpu().numpy() for t in _hqr.top_eigenvalue_cuda(C.cuda()))
    assert ok.all()
    ref = np.abs(torch.linalg.eigvals(C).numpy()).max(-1)
    np.testing.assert_allclose(np.hypot(re, im), ref, rtol=1e-12, atol=1e-14)
    cre, cim, _ = cpu_top(C.numpy())  # the same algorithm (FMA contraction may differ in the last bits)
    np.testing.assert_allclose(np.hypot(re, im), np.hypot(cre, cim), rtol=1e-12, atol=1e-14)


@needs_gpu
@pytest.mark.parametrize("name,G", SYMMETRIC, ids=[c[0] for c in SYMMETRIC])
def test_cuda_symmetric_kernel_matches_lapack(name, G):
    from theory import _hqr

    top = _hqr.symmetric_max_cuda(G.cuda()).cpu().numpy()
    ref = torch.linalg.eigvalsh(G)[:, -1].numpy()
    norm = torch.linalg.matrix_norm(G, ord=2).numpy()
    assert (np.abs(top - ref) <= 4 * G.shape[-1] * np.finfo(float).eps * np.maximum(norm, 1e-300)).all()


@needs_gpu
def test_cuda_kernels_are_deterministic_and_batch_independent():
    # one warp per matrix, nothing shared between warps: a matrix's result is bitwise the same alone, in any
    # batch, and on every run (a missing __syncwarp would show as results that move between runs)
    from theory import _hqr

    C = _restrict(T.softmax_attention((3000,), 32, beta=1000.0, generator=T.make_generator(4))).cuda()
    first = torch.stack(_hqr.top_eigenvalue_cuda(C)[:2])
    for _ in range(3):
        assert torch.equal(torch.stack(_hqr.top_eigenvalue_cuda(C)[:2]), first)
    assert torch.equal(torch.stack(_hqr.top_eigenvalue_cuda(C[1234:1235])[:2]), first[:, 1234:1235])
    G = C.mT @ C
    sym = _hqr.symmetric_max_cuda(G)
    assert torch.equal(_hqr.symmetric_max_cuda(G), sym) and torch.equal(_hqr.symmetric_max_cuda(G[7:9]), sym[7:9])


@needs_gpu
@pytest.mark.parametrize("lanes,shared_budget", [(16, 48 * 1024), (8, 48 * 1024), (32, 200 * 1024), (16, 200 * 1024)])
def test_cuda_kernels_give_bitwise_the_same_results_for_every_lane_count_and_block(lanes, shared_budget):
    # lanes per matrix and matrices per block change which lane computes an entry, never its arithmetic; a group
    # of 16 or 8 lanes synchronises only its own lanes while its warp's other matrices iterate on (a mask that
    # covered them, or none, would hang or race: results that move between runs or with the batch)
    from theory import _hqr

    for n, beta, count in ((32, 4.0, 3001), (32, 1000.0, 3001), (65, 4.0, 37), (3, 4.0, 9)):
        C = _restrict(T.softmax_attention((count,), n, beta=beta, generator=T.make_generator(n + int(beta)))).cuda()
        want = _hqr.top_eigenvalue_cuda(C, errors=True)
        got = _hqr.top_eigenvalue_cuda(C, errors=True, lanes=lanes, shared_budget=shared_budget)
        for a, b in zip(got, want):
            assert torch.equal(a, b), (n, beta)
        G = C.mT @ C
        assert torch.equal(_hqr.symmetric_max_cuda(G, lanes=lanes, shared_budget=shared_budget),
                           _hqr.symmetric_max_cuda(G)), (n, beta)


@needs_gpu
@pytest.mark.parametrize("n", [32, 65])
def test_cuda_error_estimate_matches_the_cpu_build(n):
    from theory import _hqr
    from theory._attention import _top_eigenvalue

    for beta in (0.5, 4.0, 1000.0):
        C = _restrict(T.softmax_attention((500,), n, beta=beta, generator=T.make_generator(7)))
        re, im, ok, err = (t.cpu().numpy() for t in _hqr.top_eigenvalue_cuda(C.cuda(), errors=True))
        plain = [t.cpu().numpy() for t in _hqr.top_eigenvalue_cuda(C.cuda())]
        assert all(np.array_equal(u, v) for u, v in zip(plain, (re, im, ok)))  # errors change no eigenvalue
        cre, cim, cok, cerr = cpu_top(C.numpy(), errors=True)
        mod = np.hypot(re, im)
        if beta < 100:  # well-conditioned: the same estimate (FMA contraction may differ in the last bits)
            np.testing.assert_allclose(err, cerr, rtol=1e-8)
        else:  # nearly one-hot rows: the same matrices flagged as uncertain beyond 1e-6
            assert ((err / mod > 1e-6) == (cerr / np.hypot(cre, cim) > 1e-6)).mean() >= 0.98
        top, terr = _top_eigenvalue(C.cuda(), errors=True)  # the engine's path goes through the kernel
        assert torch.equal(terr.cpu(), torch.from_numpy(err))


@needs_gpu
def test_cuda_kernels_refuse_what_they_cannot_take():
    from theory import _hqr

    with pytest.raises(ValueError, match="m <= 64"):
        _hqr.top_eigenvalue_cuda(torch.zeros(2, 65, 65, dtype=torch.float64, device="cuda"))
    with pytest.raises(ValueError, match="float64"):
        _hqr.symmetric_max_cuda(torch.zeros(2, 5, 5, dtype=torch.float32, device="cuda"))
    with pytest.raises(ValueError, match="float64"):  # eight bytes per entry is not enough
        _hqr.top_eigenvalue_cuda(torch.zeros(2, 5, 5, dtype=torch.int64, device="cuda"))


@needs_gpu
@pytest.mark.parametrize("family", ["symmetric", "causal", "dirichlet", "banded"])
def test_slem_on_cuda_agrees_with_the_cpu_for_structured_attention(family):
    # symmetric attention goes through the symmetric kernel (max of the top eigenvalues of C and -C) on CUDA,
    # causal through its diagonal, the others through the general kernel
    g = T.make_generator(6)
    P = {"symmetric": lambda: T.random_symmetric_doubly_stochastic((300,), 32, generator=g),
         "causal": lambda: T.causal_attention((300,), 32, beta=4.0, generator=g),
         "dirichlet": lambda: T.dirichlet_attention((300,), 32, alpha=1.0, generator=g),
         "banded": lambda: T.banded_attention((300,), 32, beta=4.0, window=2, generator=g)}[family]()
    gpu, cpu = T.slem(P.cuda()).cpu(), T.slem(P)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-12, atol=64 * np.finfo(float).eps)
