"""Exact binomial sampling tables: 64-bit fixed-point CDF thresholds.

A draw from ``Binomial(n, p)`` is ``k0 + #{j : T[j] <= u}`` for one uniform 64-bit word
``u``, where ``T[j] = floor(P(X <= k0 + j) * 2**64)``. Integer comparisons only, so the
same ``u`` gives the same count on every backend.

The thresholds come from one deterministic construction (:mod:`.table_builder`:
the pmf by its ratio recurrence from the mode in double-double arithmetic, built from
correctly rounded ``+ - * /`` only; thresholds from the running CDF below the mode and
the running survival function above it; tails trimmed where their mass is below
``2**-64``). The same construction runs in the native library (host tables through
ctypes, and tables for a traced ``p`` inside the compiled program, on CPU and CUDA), so
every path and every machine gives the same bits. :func:`binomial_table` uses the
native builder when the CPU library is present (fast for huge ``n``) and the identical
pure-Python one otherwise.

:func:`binomial_pmf` (Loader's saddle-point formula) is an independent pmf for checks;
tables do not use it.

No JAX or BrainPy import (the native library is found by path and loaded with ctypes).
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import math
from typing import Any

import numpy as np

# The num_input check and its limit live with the other argument checks (checks.py,
# which does not import JAX either); re-exported here for existing callers.
from ..checks import MAX_NUM_INPUT, check_num_input
from .table_builder import build_thresholds

__all__ = [
    "MAX_NUM_INPUT",
    "BinomialTable",
    "binomial_pmf",
    "binomial_table",
    "build_table_native",
    "build_table_python",
    "check_num_input",
    "max_table_length",
]

_TWO64 = 1 << 64
_LN2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclasses.dataclass(frozen=True)
class BinomialTable:
    """The sampling table of one ``Binomial(num_input, p)``.

    Attributes:
        num_input: the number of trials ``n``.
        p: the success probability.
        k0: the smallest value a draw can take.
        thresholds: ``uint64[L]``, strictly increasing; a draw is
            ``k0 + #{j : thresholds[j] <= u}``.
    """

    num_input: int
    p: float
    k0: int
    thresholds: np.ndarray

    @property
    def size(self) -> int:
        """Number of thresholds ``L`` (the draw takes ``L + 1`` distinct values)."""
        return int(self.thresholds.shape[0])

    def words(self) -> np.ndarray:
        """Return the thresholds as ``uint32[L, 2]`` rows ``(hi, lo)``.

        This is the layout the kernels take: JAX without x64 has no uint64 arrays.
        """
        t = self.thresholds
        out = np.empty((t.shape[0], 2), dtype=np.uint32)
        out[:, 0] = (t >> np.uint64(32)).astype(np.uint32)
        out[:, 1] = (t & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        return out

    def implied_pmf(self) -> np.ndarray:
        """Return the probabilities of ``k0 .. k0 + L`` that the table realises exactly.

        Computed from the integer thresholds (as Python ints, exactly) and converted to
        float64: ``P(k0 + j) = (T[j] - T[j-1]) / 2**64`` with ``T[-1] = 0`` and
        ``T[L] = 2**64``.
        """
        edges = [0] + [int(x) for x in self.thresholds] + [_TWO64]
        return np.array([math.ldexp(b - a, -64) for a, b in zip(edges[:-1], edges[1:])])

    def sample_from_words(self, u: np.ndarray) -> np.ndarray:
        """Return ``k0 + #{j : T[j] <= u}`` for ``uint64`` words ``u`` (numpy; for tests)."""
        return self.k0 + np.searchsorted(self.thresholds, np.asarray(u, np.uint64), side="right")


def _stirlerr(n: np.ndarray) -> np.ndarray:
    """``log(n!) - log(sqrt(2 pi n) (n/e)^n)`` for integer ``n >= 1`` (float64 array)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.empty_like(n)
    small = n <= 15
    if np.any(small):
        ns = n[small]
        # Exact enough here: lgamma(16) ~ 28, so the absolute error is ~1e-15.
        lg = np.array([math.lgamma(x + 1.0) for x in ns])
        out[small] = lg - (ns + 0.5) * np.log(ns) + ns - _HALF_LOG_2PI
    big = ~small
    if np.any(big):
        nb = n[big]
        nn = nb * nb
        s0, s1, s2, s3, s4 = 1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188
        out[big] = (s0 - (s1 - (s2 - (s3 - s4 / nn) / nn) / nn) / nn) / nb
    return out


def _bd0(x: np.ndarray, m: float) -> np.ndarray:
    """Deviance term ``x log(x/m) + m - x``, without cancellation when ``x ~ m``."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    close = np.abs(x - m) < 0.1 * (x + m)
    xc = x[close]
    if xc.size:
        v = (xc - m) / (xc + m)
        s = (xc - m) * v
        ej = 2.0 * xc * v
        v2 = v * v
        done = np.zeros(xc.shape, dtype=bool)
        for j in range(1, 1000):
            ej = ej * v2
            s1 = s + ej / (2 * j + 1)
            done |= s1 == s
            s = np.where(done, s, s1)
            if done.all():
                break
        out[close] = s
    far = ~close
    xf = x[far]
    if xf.size:
        out[far] = xf * np.log(xf / m) + m - xf
    return out


def binomial_pmf(k: np.ndarray, n: int, p: float) -> np.ndarray:
    """Return ``P(X = k)`` for ``X ~ Binomial(n, p)``, accurate to a few ulps.

    Args:
        k: integer values (array-like); values outside ``[0, n]`` give 0.
        n: number of trials, ``n >= 1``.
        p: success probability in ``[0, 1]``.
    """
    k = np.asarray(k, dtype=np.float64)
    out = np.zeros(k.shape, dtype=np.float64)
    q = 1.0 - p
    if p == 0.0:
        out[k == 0] = 1.0
        return out
    if p == 1.0:
        out[k == n] = 1.0
        return out
    nf = float(n)
    at0 = k == 0
    atn = k == n
    inner = (k > 0) & (k < n)
    if np.any(at0):
        lc = -_bd0(np.array([nf]), nf * q)[0] - nf * p if p < 0.1 else nf * math.log(q)
        out[at0] = math.exp(lc)
    if np.any(atn):
        lc = -_bd0(np.array([nf]), nf * p)[0] - nf * q if q < 0.1 else nf * math.log(p)
        out[atn] = math.exp(lc)
    if np.any(inner):
        ki = k[inner]
        lc = (
            _stirlerr(np.array([nf]))[0] - _stirlerr(ki) - _stirlerr(nf - ki) - _bd0(ki, nf * p) - _bd0(nf - ki, nf * q)
        )
        # log(2 pi k (n - k) / n), with n - k exact (log1p(-k/n) cancels for k ~ n).
        lf = math.log(2.0 * math.pi) + np.log(ki) + np.log(nf - ki) - math.log(nf)
        out[inner] = np.exp(lc - 0.5 * lf)
    return out


def max_table_length(num_input: int) -> int:
    """An upper bound on ``binomial_table(num_input, p).size`` over every ``p`` in [0, 1].

    By Hoeffding's inequality each tail beyond ``t = sqrt(32 ln2 * n)`` of the mean
    holds less than ``2**-64``, and such values are trimmed, so at most ``2 t + 2``
    thresholds remain. Used to size tables built at run time (traced ``p``).
    """
    n = int(num_input)
    return int(min(n, math.floor(2.0 * math.sqrt(32.0 * _LN2 * n)) + 2))


def _check_args(num_input: object, p: object) -> tuple[int, float]:
    n = check_num_input(num_input)
    try:
        pf = float(p)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"p must be a real scalar, got p={p!r}") from None
    if not (0.0 <= pf <= 1.0):
        raise ValueError(f"p must be in [0, 1], got p={pf!r}")
    return n, pf


def _native_builder():
    """The native ``bpp_binomial_table_build`` (ctypes), or ``None`` where the CPU library
    is missing, fails to load or is disabled by ``BRAINPY_POISSON_NATIVE=0``."""
    global _native_fn, _native_looked
    if _native_looked:
        return _native_fn
    _native_looked = True
    from .. import switches
    from ..ops.native import library_paths

    path = library_paths().get("cpu")
    if path is None or not switches.get(switches.NATIVE):
        return None
    try:
        fn = ctypes.CDLL(path).bpp_binomial_table_build
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [
        ctypes.c_int64,
        ctypes.c_double,
        ctypes.c_int64,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_int32),
        ctypes.POINTER(ctypes.c_int32),
    ]
    _native_fn = fn
    return fn


_native_fn: Any = None
_native_looked = False


def build_table_python(n: int, p: float) -> BinomialTable:
    """The table of ``Binomial(n, p)`` by the pure-Python construction
    (:mod:`.table_builder`); arguments are not checked. Slow for huge ``n`` (a few
    seconds at ``n = 2**31 - 1``, ``p = 0.5``)."""
    k0, kept = build_thresholds(n, p)
    return BinomialTable(n, p, int(k0), np.array(kept, dtype=np.uint64))


def build_table_native(n: int, p: float) -> BinomialTable | None:
    """The same table built by the native library (``bpp/binomial_table.h``), or ``None``
    when the library is not available; arguments are not checked."""
    fn = _native_builder()
    if fn is None:
        return None
    capacity = max_table_length(n)
    out = np.zeros(max(capacity, 1), dtype=np.uint64)
    k0 = ctypes.c_int32()
    size = ctypes.c_int32()
    status = fn(n, p, capacity, out.ctypes.data, ctypes.byref(k0), ctypes.byref(size))
    if status != 0:  # pragma: no cover - invariant (size <= max_table_length, p checked)
        raise AssertionError(f"native table builder failed with status {status} for n={n}, p={p!r}")
    return BinomialTable(n, p, int(k0.value), out[: size.value].copy())


@functools.lru_cache(maxsize=256)
def _build(n: int, p: float) -> BinomialTable:
    table = build_table_native(n, p)
    if table is None:
        table = build_table_python(n, p)
    th = table.thresholds
    if th.size > 1 and not np.all(th[1:] > th[:-1]):  # pragma: no cover - invariant
        raise AssertionError(f"non-monotone thresholds for n={n}, p={p}")
    return table


def binomial_table(num_input: int, p: float) -> BinomialTable:
    """Return the (cached) exact sampling table of ``Binomial(num_input, p)``.

    Args:
        num_input: number of trials, an integer in ``[1, 2**31 - 1]``.
        p: success probability, a real number in ``[0, 1]`` (0 and 1 exactly allowed).

    Returns:
        A :class:`BinomialTable`. For ``p == 0`` it is empty with ``k0 == 0``; for
        ``p == 1`` empty with ``k0 == num_input``.

    Raises:
        TypeError: ``num_input`` is not an integer or ``p`` not a real scalar.
        ValueError: ``num_input`` or ``p`` is out of range (the message names it).
    """
    n, pf = _check_args(num_input, p)
    return _build(n, pf)
