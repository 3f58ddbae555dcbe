"""LAPACK-backed linalg (framework/ops/lapack.py, csrc/kernels/lapack.cpp) against torch:
what the registry samples cannot state (det / logdet, the symmetric Cholesky gradient,
left=False, upper=True, empty matrices) and the errors for singular, indefinite and
non-square input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import framework as fw


def both(a):
    return fw.tensor(a), torch.tensor(a)


def test_det_logdet_slogdet_match_torch():
    rng = np.random.default_rng(0)
    mats = [rng.standard_normal((3, 3)), -np.eye(3), np.array([[1.0, 2.0], [2.0, 4.0]]),
            rng.standard_normal((2, 4, 4)), np.zeros((0, 0))]
    for a in mats:
        f, t = both(a)
        np.testing.assert_allclose(fw.det(f).numpy(), torch.det(t).numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(fw.logdet(f).numpy(), torch.logdet(t).numpy(), rtol=1e-10)
        for g, w in zip(fw.linalg.slogdet(f), torch.linalg.slogdet(t)):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-10)
    a = rng.standard_normal((3, 3))
    f, t = fw.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    fw.det(f).backward()
    torch.det(t).backward()
    np.testing.assert_allclose(f.grad.numpy(), t.grad.numpy(), rtol=1e-8)


def test_cholesky_gradient_matches_torch_on_symmetric_input():
    rng = np.random.default_rng(1)
    m = rng.standard_normal((2, 4, 4))
    s = m @ m.transpose(0, 2, 1) + 4 * np.eye(4)
    fs, ts = fw.tensor(s, requires_grad=True), torch.tensor(s, requires_grad=True)
    w = rng.standard_normal((2, 4, 4))
    for upper in (False, True):
        fs.grad, ts.grad = None, None
        fl = fw.linalg.cholesky((fs + fs.transpose(-2, -1)) * 0.5, upper=upper)
        tl = torch.linalg.cholesky((ts + ts.transpose(-2, -1)) * 0.5, upper=upper)
        np.testing.assert_allclose(fl.detach().numpy(), tl.detach().numpy(), rtol=1e-10)
        (fl * fw.tensor(w)).sum().backward()
        (tl * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(fs.grad.numpy(), ts.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_solve_right_side_inverse_method_and_empty():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((3, 3)) + 3 * np.eye(3), rng.standard_normal((2, 3))
    (fa, ta), (fb, tb) = both(a), both(b)
    np.testing.assert_allclose(fw.linalg.solve(fa, fb, left=False).numpy(),
                               torch.linalg.solve(ta, tb, left=False).numpy(), rtol=1e-10)
    np.testing.assert_allclose(fa.inverse().numpy(), ta.inverse().numpy(), rtol=1e-10)
    assert fw.linalg.inv(fw.zeros(2, 0, 0)).shape == fw.Size([2, 0, 0])
    assert fw.linalg.solve(fw.eye(3, dtype=fw.float32), fw.ones(3)).tolist() == [1.0, 1.0, 1.0]


def test_lapack_errors_name_the_problem():
    sing = fw.tensor([[[1.0, 2.0], [2.0, 4.0]], [[1.0, 0.0], [0.0, 1.0]]])[[1, 0]]  # batch element 1 singular
    with pytest.raises(RuntimeError, match=r"linalg.solve: \(Batch element 1\).*singular"):
        fw.linalg.solve(sing, fw.ones(2, 2, 1))
    with pytest.raises(RuntimeError, match=r"linalg.inv: \(Batch element 1\).*singular"):
        fw.linalg.inv(sing)
    with pytest.raises(RuntimeError, match=r"not positive-definite \(the leading minor of order 2"):
        fw.linalg.cholesky(fw.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(RuntimeError, match="square"):
        fw.linalg.inv(fw.ones(2, 3))
    with pytest.raises(RuntimeError, match="floating point"):
        fw.linalg.det(fw.ones(2, 2, dtype=fw.int64))
    with pytest.raises(RuntimeError, match="Incompatible shapes"):
        fw.linalg.solve(fw.eye(3), fw.ones(2, 1))


def test_qr_modes_match_torch_and_orthogonal_init():
    rng = np.random.default_rng(3)
    for shape in [(5, 3), (3, 5), (2, 4, 4)]:
        a = rng.standard_normal(shape)
        f, t = both(a)
        for mode in ("reduced", "complete", "r"):
            got, want = fw.linalg.qr(f, mode=mode), torch.linalg.qr(t, mode=mode)
            for g, w in zip(got, want):
                assert tuple(g.shape) == tuple(w.shape), (shape, mode)
                np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(NotImplementedError, match="wide"):
        q, r = fw.linalg.qr(fw.randn(2, 4, dtype=fw.float64).requires_grad_())
        (q.sum() + r.sum()).backward()
    for shape in [(64, 32), (16, 48), (8, 3, 3)]:
        w = fw.nn.init.orthogonal_(fw.empty(*shape), gain=2.0)
        m = w.reshape(shape[0], -1).numpy().astype(np.float64)
        small = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
        np.testing.assert_allclose(small, 4.0 * np.eye(small.shape[0]), atol=1e-4)


def test_eigh_values_vectors_and_gradient_match_torch():
    rng = np.random.default_rng(4)
    m = rng.standard_normal((2, 4, 4))
    s = m + m.transpose(0, 2, 1)
    fs, ts = fw.tensor(s, requires_grad=True), torch.tensor(s, requires_grad=True)
    for uplo in ("L", "U"):
        (fl, fv), (tl, tv) = fw.linalg.eigh(fs, UPLO=uplo), torch.linalg.eigh(ts, UPLO=uplo)
        np.testing.assert_allclose(fl.detach().numpy(), tl.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np.abs(fv.detach().numpy()), np.abs(tv.detach().numpy()), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fw.linalg.eigvalsh(fs).detach().numpy(), torch.linalg.eigvalsh(ts).detach().numpy(),
                               rtol=1e-10)
    # a loss that does not depend on the eigenvectors' signs: eigenvalues and V diag(w) V^T
    w = rng.standard_normal(4)
    fl, fv = fw.linalg.eigh((fs + fs.transpose(-2, -1)) * 0.5)
    tl, tv = torch.linalg.eigh((ts + ts.transpose(-2, -1)) * 0.5)
    ((fl * fl).sum() + (fv * fw.tensor(w) @ fv.transpose(-2, -1) * fw.tensor(s)).sum()).backward()
    ((tl * tl).sum() + (tv * torch.tensor(w) @ tv.transpose(-2, -1) * torch.tensor(s)).sum()).backward()
    np.testing.assert_allclose(fs.grad.numpy(), ts.grad.numpy(), rtol=1e-7, atol=1e-9)
