"""Exact binomial sampling tables: 64-bit fixed-point CDF thresholds.

A draw from ``Binomial(n, p)`` is ``k0 + #{j : T[j] <= u}`` for one uniform 64-bit word
``u``, where ``T[j] = floor(P(X <= k0 + j) * 2**64)``. Integer comparisons only, so the
same ``u`` gives the same count on every backend.

The pmf is evaluated with Loader's saddle-point formula (deviance ``bd0`` plus Stirling
corrections), accurate to a few ulps even for ``n`` near ``2**31``, where the naive
``lgamma`` difference would lose six digits to cancellation. The CDF is then summed in
exact integer arithmetic, so thresholds in the lower tail follow the running CDF and
those in the upper tail the running survival function (``total - cum``, itself an exact
sum of tail terms): both tails keep their relative precision. Values whose tail mass is below ``2**-64`` are
trimmed: the first threshold is the first non-zero one, the last the last one below
``2**64``.

Pure numpy; no JAX or BrainPy import.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

# The num_input check and its limit live with the other argument checks (checks.py,
# which does not import JAX either); re-exported here for existing callers.
from ..checks import MAX_NUM_INPUT, check_num_input

__all__ = [
    "BinomialTable",
    "binomial_table",
    "binomial_pmf",
    "max_table_length",
    "check_num_input",
    "MAX_NUM_INPUT",
]

_TWO64 = 1 << 64
_LN2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

# Hoeffding: P(|X - np| >= t) <= 2 exp(-2 t^2 / n). With t = sqrt(n * 80 ln2 / 2) each
# tail outside the evaluation window holds less than 2**-80, far below the 2**-64
# resolution of the thresholds.
_WINDOW_BITS = 80


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
            _stirlerr(np.array([nf]))[0]
            - _stirlerr(ki)
            - _stirlerr(nf - ki)
            - _bd0(ki, nf * p)
            - _bd0(nf - ki, nf * q)
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


def _to_fixed_floor(x: float, bits: int = 64) -> int:
    """``floor(x * 2**bits)`` exactly, for a float64 ``x`` in [0, 1]."""
    mant, exp = math.frexp(x)
    # x = mant * 2**exp with mant in [0.5, 1): use the exact integer mantissa.
    m = int(math.ldexp(mant, 53))
    shift = exp - 53 + bits
    return m << shift if shift >= 0 else m >> -shift


@functools.lru_cache(maxsize=256)
def _build(n: int, p: float) -> BinomialTable:
    if p == 0.0:
        return BinomialTable(n, p, 0, np.zeros(0, np.uint64))
    if p == 1.0:
        return BinomialTable(n, p, n, np.zeros(0, np.uint64))
    mean = n * p
    half = math.sqrt(n * _WINDOW_BITS * _LN2 / 2.0) + 2.0
    lo = max(0, int(math.floor(mean - half)))
    hi = min(n, int(math.ceil(mean + half)))
    ks = np.arange(lo, hi + 1, dtype=np.float64)
    pmf = binomial_pmf(ks, n, p)
    # Exact integer arithmetic from here on: each pmf value as an integer multiple of
    # 2^-192 (values below that cannot move a 2^-64 threshold), exact prefix sums, and
    # thresholds T = floor(cdf * 2^64 / total). The lower tail of the CDF and the upper
    # tail (total - cum, a sum of tail terms) are then both exact relative to the pmf,
    # and normalising by the exact total keeps the realised pmf summing to one.
    scaled = [_to_fixed_floor(v, 192) for v in pmf.tolist()]
    total = sum(scaled)
    thresholds: list[int] = []
    cum = 0
    for q in scaled:
        cum += q
        thresholds.append((cum << 64) // total)
    k0 = lo
    # Trim the lower tail: thresholds equal to 0 mean "always exceeded".
    start = 0
    while start < len(thresholds) and thresholds[start] == 0:
        start += 1
    # Trim the upper tail: a threshold of 2^64 can never be reached by u < 2^64.
    stop = len(thresholds)
    while stop > start and thresholds[stop - 1] >= _TWO64:
        stop -= 1
    kept = thresholds[start:stop]
    k0 += start
    # Far in a tail, neighbouring values can round to the same threshold (their own
    # mass is below 2^-64). Cut each tail at its first such pair, counted from the
    # middle: the value at the cut then carries the whole remaining tail mass, which
    # the thresholds give exactly, and the table stays strictly increasing.
    mid = int(np.searchsorted(np.array(kept, dtype=np.uint64), np.uint64(1 << 63)))
    mid = min(mid, max(len(kept) - 1, 0))
    for j in range(mid, len(kept) - 1):
        if kept[j + 1] == kept[j]:
            kept = kept[: j + 1]
            break
    for j in range(min(mid, len(kept) - 1), 0, -1):
        if kept[j - 1] == kept[j]:
            kept = kept[j:]
            k0 += j
            break
    arr = np.array(kept, dtype=np.uint64)
    if arr.size > 1 and not np.all(arr[1:] > arr[:-1]):  # pragma: no cover - invariant
        raise AssertionError(f"non-monotone thresholds for n={n}, p={p}")
    return BinomialTable(n, p, int(k0), arr)


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
