"""The batched eigenvalue kernel for the GPU (theory/_hqr.py): one thread per matrix, Francis double-shift QR.

Its scalar source is checked against LAPACK on the CPU (compiled with numba.njit), and its CUDA launch in
numba's CUDA simulator (no GPU here); on a machine with a GPU the engine's path is checked against the CPU."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import theory as T
from theory._attention import _restrict
from theory._hqr import cpu_reference

FAMILIES = {
    "softmax beta 0.5": lambda g: T.softmax_attention((200,), 32, beta=0.5, generator=g),
    "softmax beta 4": lambda g: T.softmax_attention((200,), 32, beta=4.0, generator=g),
    "sparse, often reducible": lambda g: T.random_row_stochastic((200,), 9, zero_prob=0.7, generator=g),
    "n = 2": lambda g: T.softmax_attention((50,), 2, beta=4.0, generator=g),
    "n = 3": lambda g: T.softmax_attention((50,), 3, beta=4.0, generator=g),
    "uniform (C = 0)": lambda g: torch.full((4, 5, 5), 0.2, dtype=torch.float64),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_kernel_top_eigenvalue_matches_lapack_on_well_conditioned_attention(family):
    P = FAMILIES[family](T.make_generator(0))
    C = _restrict(P).numpy().copy()
    re, im, ok = cpu_reference(C)
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
    re, im, ok = cpu_reference(C)
    delta, err = T.slem_with_error(P)
    trusted = (err / delta <= 1e-6).numpy() & ok
    assert trusted.mean() > 0.8
    np.testing.assert_allclose(np.hypot(re, im)[trusted], delta.numpy()[trusted], rtol=2e-6)


SIMULATED = """
import numpy as np, torch, theory as T
from theory._attention import _restrict
from theory._hqr import spectral_radius_cuda
P = T.softmax_attention((6,), 6, beta=4.0, generator=T.make_generator(3))
C = _restrict(P).numpy().copy()
re, im, ok = spectral_radius_cuda(C, threads=4)
ref = np.abs(torch.linalg.eigvals(torch.from_numpy(C)).numpy()).max(-1)
assert ok.all() and np.allclose(np.hypot(re, im), ref, rtol=1e-12, atol=1e-14), (np.hypot(re, im), ref)
print("simulated kernel ok")
"""


def test_cuda_kernel_launch_in_numbas_cuda_simulator():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.run([sys.executable, "-c", SIMULATED], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "simulated kernel ok" in proc.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_slem_on_cuda_goes_through_the_kernel_and_agrees_with_the_cpu():
    from theory import _hqr

    assert _hqr.cuda_available()
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
