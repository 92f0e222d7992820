"""HQ objectives and the Householder product, as pure torch functions (any float dtype).

Every loss takes the rotated batch ``Z`` (rows already rescaled to norm sqrt(n_bits) in the paper's setting)
and returns a scalar; ``sgn`` follows the code convention ``z >= 0 -> +1``.

- ``l2``        mean (Z - sgn Z)^2              — the HQ paper's main tables (default)
- ``l1``        mean |Z - sgn Z|
- ``bit_var``   mean sigmoid(Z) (1 - sigmoid(Z)) — the variance of a Bernoulli(sigmoid(Z)) bit
- ``min_entry`` mean over rows of logsumexp_j(-Z_ij^2) — a soft "smallest |Z_ij| of each row"

The losses are differentiable by autograd; :func:`loss_and_grad` gives the same value with its gradient with
respect to Z in closed form, :func:`householder_product` forms R = H_1 ... H_k in compact WY form and
:func:`householder_vjp` pulls a gradient with respect to R back to the Householder vectors, so an HQ step needs
no autograd graph at all (tests check both against autograd).

For l2 on a full batch there is a shortcut: with S = sgn(XR) and N = X.numel(), and ||XR|| = ||X|| for
orthogonal R,
  L = (||X||^2 - 2 sum |XR|) / N + 1,     dL/dR = 2 (X^T X R - X^T S) / N,
so one step costs one matmul X R, one sign, one matmul X^T S — :func:`l2_full_batch`, which also offers the
gradient of a smoothed (Huber) l2 (sgn -> clamp(. / tau, -1, 1)) used by HQ's default schedule.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch

#: intra-op threads used while fitting (HASHVIZ_TORCH_THREADS overrides). One thread: our matrices are small or
#: thin (n x 64), and on a shared 2-core machine a second thread waiting for a busy core made steps 6x slower.
TORCH_THREADS = int(os.environ.get("HASHVIZ_TORCH_THREADS", "1"))


@contextmanager
def torch_threads(n: int | None = None):
    """Run the block with ``n`` torch intra-op threads (default :data:`TORCH_THREADS`), then restore."""
    n = TORCH_THREADS if n is None else n
    old = torch.get_num_threads()
    if n > 0 and n != old:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n > 0 and n != old:
            torch.set_num_threads(old)


def sgn(Z: torch.Tensor) -> torch.Tensor:
    """+1 or -1 with the sign bit of Z, same dtype as Z (no gradient flows through it).

    Equals the codes' sign (z >= 0 -> +1) everywhere except at z = -0.0, where it gives -1; that changes no loss
    value ((0 - 1)^2 = (0 + 1)^2, |0 - 1| = |0 + 1|) and no gradient that matters (exact zeros come from zero
    rows, whose contribution X^T (...) is zero), and it is ~7x faster than ``torch.where`` on CPU.
    """
    return torch.copysign(torch.ones((), dtype=Z.dtype, device=Z.device).expand_as(Z), Z)


def l2(Z: torch.Tensor) -> torch.Tensor:
    """mean (Z - sgn Z)^2."""
    return (Z - sgn(Z)).square().mean()


def l1(Z: torch.Tensor) -> torch.Tensor:
    """mean |Z - sgn Z|."""
    return (Z - sgn(Z)).abs().mean()


def bit_var(Z: torch.Tensor) -> torch.Tensor:
    """mean sigmoid(Z) (1 - sigmoid(Z))."""
    s = torch.sigmoid(Z)
    return (s * (1 - s)).mean()


def min_entry(Z: torch.Tensor) -> torch.Tensor:
    """mean over rows of logsumexp_j(-Z_ij^2)."""
    return torch.logsumexp(-Z.square(), dim=1).mean()


LOSSES = {"l2": l2, "l1": l1, "bit_var": bit_var, "min_entry": min_entry}


def loss_and_grad(name: str, Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, dloss/dZ) in closed form for loss ``name`` (sgn is treated as locally constant, as autograd does)."""
    N = Z.numel()
    if name == "l2":
        D = Z - sgn(Z)
        return D.square().mean(), D * (2.0 / N)
    if name == "l1":
        D = Z - sgn(Z)
        return D.abs().mean(), torch.sign(D) * (1.0 / N)
    if name == "bit_var":
        s = torch.sigmoid(Z)
        v = s * (1 - s)
        return v.mean(), v * (1 - 2 * s) * (1.0 / N)
    if name == "min_entry":
        A = -Z.square()
        lse = torch.logsumexp(A, dim=1, keepdim=True)
        P = torch.exp(A - lse)                                  # softmax over each row
        return lse.mean(), P * Z * (-2.0 / Z.shape[0])
    raise KeyError(name)


def sign_gram(X: torch.Tensor, R: torch.Tensor, *, tau: float = 0.0, block: int = 4096):
    """(X^T S, sum |X R|) with S = sgn(X R), or clamp(X R / tau, -1, 1) when tau > 0; over row blocks (each
    block's X R stays in cache, ~20% faster than two full-size matmuls)."""
    one = torch.ones((), dtype=X.dtype, device=X.device)
    C = torch.zeros(X.shape[1], R.shape[1], dtype=X.dtype, device=X.device)
    buf = torch.empty(min(block, X.shape[0]), R.shape[1], dtype=X.dtype, device=X.device)
    abs_sum = 0.0
    for s in range(0, X.shape[0], block):
        Xb = X[s:s + block]
        Z = buf[:Xb.shape[0]]
        torch.mm(Xb, R, out=Z)
        abs_sum += float(torch.linalg.vector_norm(Z, ord=1))          # float32 per block, float64 across
        if tau > 0:
            Z.mul_(1.0 / tau).clamp_(-1.0, 1.0)
        else:
            torch.copysign(one.expand_as(Z), Z, out=Z)
        C.addmm_(Xb.T, Z)
    return C, abs_sum


def l2_full_batch(R: torch.Tensor, X: torch.Tensor, XtX: torch.Tensor, sq_norm: float, *, tau: float = 0.0):
    """(loss, dL/dR) of l2 on the whole of X via the shortcut in the module docstring (Z is never stored).

    With ``tau > 0`` the gradient is that of the smoothed loss mean(Z^2) - 2 mean(huber_tau(Z)) + 1, with
    huber_tau(z) = z^2 / (2 tau) for |z| <= tau and |z| - tau / 2 beyond (sgn replaced by clamp(. / tau, -1, 1),
    free where tanh cost 10 ms per 50,000 x 64 pass; it tends to l2 as tau -> 0); the loss returned is always the
    exact l2.
    """
    XtS, abs_sum = sign_gram(X, R, tau=tau)
    N = X.numel()
    loss = (sq_norm - 2.0 * abs_sum) / N + 1.0            # ||X R||^2 = ||X||^2 for orthogonal R
    return loss, (XtX @ R - XtS) * (2.0 / N)


def smoothed_l2(Z: torch.Tensor, tau: float) -> torch.Tensor:
    """The smoothed l2 of :func:`l2_full_batch`: mean(Z^2) - 2 mean(huber_tau(Z)) + 1 (l2 itself for tau = 0)."""
    if tau <= 0:
        return l2(Z)
    A = Z.abs()
    huber = torch.where(A <= tau, Z.square() / (2 * tau), A - tau / 2)
    return (Z.square() - 2 * huber).mean() + 1


def smoothed_l2_grad(Z: torch.Tensor, tau: float) -> torch.Tensor:
    """d/dZ of :func:`smoothed_l2`: 2 (Z - clamp(Z / tau, -1, 1)) / Z.numel()."""
    return (Z - (Z / tau).clamp(-1.0, 1.0)) * (2.0 / Z.numel())


def _wy(V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, W = T V^T) of the compact WY form."""
    G = V.T @ V
    T_inv = torch.triu(G, diagonal=1) + torch.diag(0.5 * torch.diagonal(G))
    eye = torch.eye(V.shape[1], dtype=V.dtype, device=V.device)
    T = torch.linalg.solve_triangular(T_inv, eye, upper=True)
    return T, T @ V.T


def householder_product(V: torch.Tensor) -> torch.Tensor:
    """R = H_1 H_2 ... H_k with H_i = I - 2 v_i v_i^T / ||v_i||^2, v_i the columns of V (n, k); differentiable.

    Compact WY form (Schreiber & Van Loan 1989; Joffrain et al. 2006): R = I - V T V^T with T the inverse of
    the upper-triangular matrix diag(||v_i||^2) / 2 + strict_upper(V^T V). One Gram matrix, one triangular
    solve and two matmuls instead of k sequential rank-1 updates.
    """
    G = V.T @ V
    T_inv = torch.triu(G, diagonal=1) + torch.diag(0.5 * torch.diagonal(G))
    W = torch.linalg.solve_triangular(T_inv, V.T, upper=True)      # T V^T
    return torch.eye(V.shape[0], dtype=V.dtype, device=V.device) - V @ W


def householder_forward(V: torch.Tensor) -> tuple[torch.Tensor, tuple]:
    """(R, cache) for :func:`householder_vjp` (no autograd)."""
    T, W = _wy(V)
    R = torch.eye(V.shape[0], dtype=V.dtype, device=V.device) - V @ W
    return R, (T, W)


def householder_vjp(V: torch.Tensor, cache: tuple, G_R: torch.Tensor) -> torch.Tensor:
    """dL/dV given dL/dR for R = I - V T V^T (closed form of the WY product's derivative).

    With W = T V^T and K = T^T V^T G_R W^T, M = strict_upper(K) + diag(K) / 2:
      dL/dV = -G_R W^T - G_R^T V T + V (M + M^T).
    """
    T, W = cache
    K = T.T @ (V.T @ G_R) @ W.T
    M = torch.triu(K, diagonal=1) + torch.diag(0.5 * torch.diagonal(K))
    return -G_R @ W.T - G_R.T @ (V @ T) + V @ (M + M.T)


def householder_product_sequential(V: torch.Tensor) -> torch.Tensor:
    """The same product by k explicit reflections (reference for tests; slower)."""
    n = V.shape[0]
    R = torch.eye(n, dtype=V.dtype, device=V.device)
    for i in range(V.shape[1]):
        v = V[:, i]
        R = R - (2.0 / (v @ v)) * torch.outer(R @ v, v)     # R H_i
    return R
