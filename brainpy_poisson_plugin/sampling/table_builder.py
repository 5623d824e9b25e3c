"""The deterministic table construction, in pure Python (the mirror of the native builder).

This module is the executable specification of how a sampling table is built. The C++
header ``_native/include/bpp/binomial_table.h`` implements the very same steps, in the
same order, for the CPU library and the CUDA kernel; a test checks that both give the
same thresholds. Only correctly rounded IEEE double ``+ - * /`` (Python floats), exact
``floor`` and integers are used: no ``exp``/``log``/``lgamma`` and no fused multiply-add,
so the result is the same bits on every machine and backend.

The construction (``n`` trials, probability ``p``):

1. ``p == 0``: empty table, ``k0 = 0``; ``p == 1``: empty, ``k0 = n``;
   ``p < 2**-200``: empty, ``k0 = 0`` (the whole upper tail is below ``2**-169``).
2. ``q = 1 - p`` exactly, as a double-double; ``r = p / q`` and ``rinv = q / p`` in
   double-double.
3. ``m = floor((n + 1) * p)`` (one rounded product), clamped to ``[0, n]``; ``w(m) = 1``.
   Walk down: ``w(k-1) = ((w(k) * k) * rinv) / (n - k + 1)``; walk up:
   ``w(k+1) = ((w(k) * (n - k)) * r) / (k + 1)``, each step three double-double
   operations. A walk stops before the first ``w`` whose high word is below
   ``2**-110`` (or at 0 / ``n``).
4. Running sums in double-double: ``D(k) = sum_{j=k}^{m-1} w(j)`` (walking down) and
   ``A(k) = sum_{j=m}^{k} w(j)`` (walking up); ``Ltot = D(a)``, ``Utot = A(b)`` at the
   walks' ends ``a <= m <= b``; total ``W = Ltot + Utot``; scale ``s = 2**64 / W``.
5. Thresholds: ``T(k) = floor((Ltot - D(k+1)) * s)`` for ``k < m`` (the running CDF)
   and ``T(k) = 2**64 - ceil((Utot - A(k)) * s)`` for ``k >= m`` (from the running
   survival function), each floor/ceil taken exactly of the double-double value.
6. Trimming, outward from the mode: ``T(m), T(m+1), ...`` are kept while they increase
   strictly and stay below ``2**64``; ``T(m-1), T(m-2), ...`` while they decrease
   strictly and stay above 0. ``k0`` is the smallest kept ``k``.
"""

from __future__ import annotations

import math

__all__ = ["CUTOFF", "TINY_P", "build_thresholds"]

#: A walk stops before the first pmf ratio ``w(k) / w(m)`` below this.
CUTOFF = 2.0**-110
#: Below this ``p`` the table is empty (all mass at 0): keeps every quantity normal.
TINY_P = 2.0**-200

_SPLITTER = 134217729.0  # 2**27 + 1
_TWO64 = 1 << 64
_TWO64_F = 18446744073709551616.0


# ----------------------------------------------------------------------------------------
# Error-free transformations and double-double arithmetic (Knuth, Dekker; no FMA).
# A double-double is a pair (hi, lo) with hi = fl(hi + lo).
# ----------------------------------------------------------------------------------------


def _two_sum(a: float, b: float) -> tuple[float, float]:
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def _quick_two_sum(a: float, b: float) -> tuple[float, float]:
    s = a + b
    e = b - (s - a)
    return s, e


def _split(a: float) -> tuple[float, float]:
    t = _SPLITTER * a
    hi = t - (t - a)
    return hi, a - hi


def _two_prod(a: float, b: float) -> tuple[float, float]:
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def _dd_add(ah: float, al: float, bh: float, bl: float) -> tuple[float, float]:
    s, e = _two_sum(ah, bh)
    t, f = _two_sum(al, bl)
    e = e + t
    s, e = _quick_two_sum(s, e)
    e = e + f
    return _quick_two_sum(s, e)


def _dd_mul(ah: float, al: float, bh: float, bl: float) -> tuple[float, float]:
    p, e = _two_prod(ah, bh)
    e = e + ah * bl
    e = e + al * bh
    return _quick_two_sum(p, e)


def _dd_mul_d(ah: float, al: float, b: float) -> tuple[float, float]:
    p, e = _two_prod(ah, b)
    e = e + al * b
    return _quick_two_sum(p, e)


def _dd_div_d(ah: float, al: float, b: float) -> tuple[float, float]:
    q1 = ah / b
    p, e = _two_prod(q1, b)
    s, f = _two_sum(ah, -p)
    f = f - e
    f = f + al
    q2 = (s + f) / b
    return _quick_two_sum(q1, q2)


def _dd_div(ah: float, al: float, bh: float, bl: float) -> tuple[float, float]:
    q1 = ah / bh
    ph, pl = _dd_mul_d(bh, bl, q1)
    rh, rl = _dd_add(ah, al, -ph, -pl)
    q2 = rh / bh
    ph, pl = _dd_mul_d(bh, bl, q2)
    rh, rl = _dd_add(rh, rl, -ph, -pl)
    q3 = rh / bh
    q1, q2 = _quick_two_sum(q1, q2)
    return _dd_add(q1, q2, q3, 0.0)


def _floor_dd(hi: float, lo: float) -> int:
    """``floor(hi + lo)`` exactly, for a normalised double-double."""
    fh = math.floor(hi)
    if fh != hi:
        return fh
    return fh + math.floor(lo)


def _ceil_dd(hi: float, lo: float) -> int:
    """``ceil(hi + lo)`` exactly, for a normalised double-double."""
    ch = math.ceil(hi)
    if ch != hi:
        return ch
    return ch + math.ceil(lo)


# ----------------------------------------------------------------------------------------
# The construction.
# ----------------------------------------------------------------------------------------


def _walk_down(n: int, m: int, rh: float, rl: float) -> list[tuple[float, float, float, float]]:
    """``[(w(k), D(k))]`` for ``k = m-1, m-2, ..., a`` (as hi/lo words)."""
    out = []
    wh, wl = 1.0, 0.0
    dh, dl = 0.0, 0.0
    k = m
    while k > 0:
        wh, wl = _dd_mul_d(wh, wl, float(k))
        wh, wl = _dd_mul(wh, wl, rh, rl)
        wh, wl = _dd_div_d(wh, wl, float(n - k + 1))
        if wh < CUTOFF:
            break
        k -= 1
        dh, dl = _dd_add(dh, dl, wh, wl)
        out.append((wh, wl, dh, dl))
    return out


def _walk_up(n: int, m: int, rh: float, rl: float) -> list[tuple[float, float, float, float]]:
    """``[(w(k), A(k))]`` for ``k = m, m+1, ..., b``."""
    wh, wl = 1.0, 0.0
    ah, al = 1.0, 0.0
    out = [(wh, wl, ah, al)]
    k = m
    while k < n:
        wh, wl = _dd_mul_d(wh, wl, float(n - k))
        wh, wl = _dd_mul(wh, wl, rh, rl)
        wh, wl = _dd_div_d(wh, wl, float(k + 1))
        if wh < CUTOFF:
            break
        k += 1
        ah, al = _dd_add(ah, al, wh, wl)
        out.append((wh, wl, ah, al))
    return out


def build_thresholds(n: int, p: float) -> tuple[int, list[int]]:
    """Return ``(k0, thresholds)`` of ``Binomial(n, p)`` by the construction above.

    Args:
        n: number of trials, ``1 <= n <= 2**31 - 1`` (not checked here).
        p: a float in ``[0, 1]`` (not checked here).

    Returns:
        ``k0`` and the strictly increasing thresholds as Python ints in ``(0, 2**64)``.
    """
    if p == 0.0 or p < TINY_P:
        return 0, []
    if p == 1.0:
        return n, []
    qh, ql = _two_sum(1.0, -p)
    rh, rl = _dd_div(p, 0.0, qh, ql)  # p / q
    ih, il = _dd_div(qh, ql, p, 0.0)  # q / p
    m = math.floor(float(n + 1) * p)
    m = min(max(m, 0), n)

    down = _walk_down(n, m, ih, il)
    up = _walk_up(n, m, rh, rl)
    lth, ltl = (down[-1][2], down[-1][3]) if down else (0.0, 0.0)
    uth, utl = up[-1][2], up[-1][3]
    th, tl = _dd_add(lth, ltl, uth, utl)
    sh, sl = _dd_div(_TWO64_F, 0.0, th, tl)

    def upper(ah: float, al: float) -> int:
        fh, fl = _dd_add(uth, utl, -ah, -al)
        yh, yl = _dd_mul(fh, fl, sh, sl)
        return _TWO64 - _ceil_dd(yh, yl)

    first = upper(up[0][2], up[0][3])
    upper_kept: list[int] = []
    if 0 < first < _TWO64:
        upper_kept.append(first)
        for _, _, ah, al in up[1:]:
            t = upper(ah, al)
            if not (upper_kept[-1] < t < _TWO64):
                break
            upper_kept.append(t)

    lower_kept: list[int] = []
    prev = upper_kept[0] if upper_kept else _TWO64
    # T(m-1) uses D(m) = 0; T(k) for k < m-1 uses D(k+1), the sum recorded one step earlier.
    dprev = (0.0, 0.0)
    for _wh, _wl, dh, dl in down:
        ch, cl = _dd_add(lth, ltl, -dprev[0], -dprev[1])
        yh, yl = _dd_mul(ch, cl, sh, sl)
        t = _floor_dd(yh, yl)
        if not (0 < t < prev):
            break
        lower_kept.append(t)
        prev = t
        dprev = (dh, dl)
    lower_kept.reverse()
    return m - len(lower_kept), lower_kept + upper_kept
