"""A small LDR family defined OUTSIDE the package, to show that adding a family is one
module plus one registration (docs/structured.md, "Adding a family").

Pair ``(D(s), D(t))``, Stein: ``M - D(s) M D(t) = G H^T``, so
``M_jk = (G H^T)_jk / (1 - s_j t_k)`` (invertible iff no ``s_j t_k = 1``). Its
products use the dense kernel (a test family, O(m n) per column); its product
of two members is closed-form (``product_rule = "closed"``): for
``M1`` on ``(D(s), D(u))`` and ``M2`` on ``(D(1/u), D(t))``,
``M1 M2 - D(s) M1 M2 D(t) = G1 (M2^T H1)^T + (D(s) M1 D(u) G2) H2^T``.

Importing this module registers the family; the registry-driven tests of
tests/test_structured_registry.py then cover it with no code of their own.
"""

from __future__ import annotations

import numpy as np

from lowdisp.structured import Diagonal
from lowdisp.structured.families import LDRFamily, is_op, register


def _real_if(x: np.ndarray, *like: np.ndarray) -> np.ndarray:
    return x.real if all(np.asarray(a).dtype.kind != "c" for a in like) else x


@register
class DiagonalSteinFamily(LDRFamily):
    name = "diagonal_stein"
    pairs = "diagonal_stein: (Diagonal(s), Diagonal(t)) stein, all s_j t_k != 1"
    square = False
    product_rule = "closed"
    inverse_kinds = ()

    @classmethod
    def recognises(cls, A, B, kind):
        return kind == "stein" and is_op(A, Diagonal) and is_op(B, Diagonal)

    @classmethod
    def singular_reason(cls, A, B, kind):
        gap = np.abs(1 - np.multiply.outer(A.d, B.d))
        if gap.min() <= 64 * np.finfo(float).eps:
            j, k = np.unravel_index(np.argmin(gap), gap.shape)
            return f"s[{j}] * t[{k}] = 1; the Stein map M - D(s) M D(t) needs s_j t_k != 1"
        return None

    @classmethod
    def example(cls, rng, n, r, dtype):
        def rand(*shape):
            x = rng.standard_normal(shape)
            return x + 1j * rng.standard_normal(shape) if np.dtype(dtype).kind == "c" else x

        s, t = rng.uniform(-0.9, 0.9, n), rng.uniform(-0.9, 0.9, n)  # |s_j t_k| < 0.81
        return Diagonal(s), Diagonal(t), rand(n, r), rand(n, r), "stein"

    @classmethod
    def closed_product(cls, M1, M2):
        ops = (M1.A, M1.B, M2.A, M2.B)
        if M1.kind != "stein" or M2.kind != "stein" or not all(is_op(o, Diagonal) for o in ops):
            return None
        u, v = M1.B.d, M2.A.d
        if not np.allclose(u * v, 1.0, rtol=0.0, atol=8 * np.finfo(float).eps):
            return None
        (G1, H1), (G2, H2) = M1.generators, M2.generators
        G = np.hstack([G1, M1.A.d[:, None] * (M1 @ (u[:, None] * G2))])
        H = np.hstack([M2.T @ H1, H2])
        return M1.A, M2.B, G, H, "stein"

    def __init__(self, A, B, G, H, kind):
        super().__init__(A, B, G, H, kind)
        self.s, self.t = A.d, B.d
        self.C = 1.0 / (1.0 - np.multiply.outer(self.s, self.t))

    def toarray(self):
        return (self.G @ self.H.T) * self.C

    def matmat(self, X):
        return self.toarray() @ X

    def rmatmat(self, Y):
        return self.toarray().conj().T @ Y

    def vjp(self, X, dY):
        # L = Re sum(conj(W) * M), W = dY X^H; gradient of p: sum W * conj(dM/dp)
        W = dY @ X.conj().T
        C, R = self.C, self.G @ self.H.T
        dG = (W * C.conj()) @ self.H.conj()
        dH = (W * C.conj()).T @ self.G.conj()
        WR = W * np.conj(R * C * C)
        ds = WR @ np.conj(self.t)
        dt = WR.T @ np.conj(self.s)
        return {
            "G": _real_if(dG, self.G, self.H, self.s, self.t),
            "H": _real_if(dH, self.G, self.H, self.s, self.t),
            "A": _real_if(ds, self.s),
            "B": _real_if(dt, self.t),
            "X": self.rmatmat(dY),
        }
