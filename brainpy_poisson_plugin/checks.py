"""Argument checks shared by every public entry point: one checker per argument family.

Each checker returns the normalised value or raises ``TypeError`` (wrong kind of value)
or ``ValueError`` (right kind, bad value) whose message names the argument (``name=``)
and the bad value. They are general on purpose: every class and function of the package
(``poisson_add``, the BrainPy classes, the ``brainpy.state`` classes) calls them with its
own argument names.

Families:

- :func:`check_impl` - an implementation name;
- :func:`check_real_scalar` - a real number (Python, numpy or JAX scalar, or a 0-d
  array); :func:`check_probability` and :func:`check_weight` build on it;
- :func:`check_num_input` - a count of inputs;
- :func:`check_seed` - an integer seed;
- :func:`check_key` - a JAX PRNG key, returned as the two threefry words the sampler uses;
- :func:`check_target_dtype` - the dtype of the array the input is added to.

A *concrete* value (anything but a tracer of ``jit``/``vmap``/``grad``) is the number it
is: a 0-d numpy or JAX array gets the same checks as the Python number and is returned
as that Python number. Only a traced value (where ``traced_ok=True``) is returned as is.

This module imports neither BrainPy nor (at import time) numpy or JAX: the pytest plugin
and the configuration module use it.
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any, cast

__all__ = [
    "IMPLEMENTATIONS",
    "FUNCTIONAL_IMPLS",
    "MAX_NUM_INPUT",
    "MAX_SEED",
    "MIN_SEED",
    "TARGET_DTYPES",
    "check_impl",
    "is_traced",
    "check_real_scalar",
    "check_probability",
    "check_weight",
    "check_num_input",
    "check_seed",
    "check_key",
    "check_target_dtype",
]

#: Implementations a caller may ask for. ``"host"`` only exists for the BrainPy classes
#: (it delegates to BrainPy's own code); ``poisson_add`` accepts :data:`FUNCTIONAL_IMPLS`.
IMPLEMENTATIONS = ("auto", "fused", "reference", "host")

#: ``impl`` values the functional core accepts.
FUNCTIONAL_IMPLS = ("auto", "fused", "reference")

#: Largest supported ``num_input`` (counts are stored as int32 on the device).
MAX_NUM_INPUT = 2**31 - 1

#: Range of integer seeds: what ``jax.random.key`` accepts (a signed 64-bit integer).
MIN_SEED = -(2**63)
MAX_SEED = 2**63 - 1

#: Target dtypes the sampler adds to (f16/bf16 accumulate in float32).
TARGET_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _show(value: object, limit: int = 60) -> str:
    """``repr(value)``, shortened to ``limit`` characters (a 400-digit int stays readable)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def check_impl(impl: object, allowed: tuple[str, ...] = IMPLEMENTATIONS, *, name: str = "impl") -> str:
    """Return ``impl`` if it is one of ``allowed``; else raise ``ValueError`` naming ``name``."""
    if not isinstance(impl, str) or impl not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {name}={_show(impl)}")
    return impl


def is_traced(value: object) -> bool:
    """Whether ``value`` is a JAX tracer (has no value yet), or a wrapper holding one.

    Never imports JAX: with JAX not imported, nothing can be traced.
    """
    if "jax" not in sys.modules:
        return False
    from .ops._jax_compat import Tracer

    if isinstance(value, Tracer):
        return True
    inner = getattr(value, "value", None)  # BrainPy's Array wraps a jax.Array in .value
    return inner is not value and isinstance(inner, Tracer)


def _unwrap(value: Any) -> Any:
    """The array inside a wrapper such as ``brainpy.math.Array`` (its ``.value``)."""
    if type(value).__module__.split(".")[0] in ("numpy", "jax", "jaxlib", "builtins"):
        return value
    inner = getattr(value, "value", None)
    if inner is not None and hasattr(inner, "dtype") and hasattr(inner, "shape"):
        return inner
    return value


def _dtype_family(dtype: Any) -> str:
    """``"bool"``, ``"int"``, ``"float"``, ``"complex"`` or ``"other"`` for a numpy-style dtype
    (ml_dtypes' float16-like types such as bfloat16 or float8 count as ``"float"``)."""
    kind = getattr(dtype, "kind", None)
    if kind == "b":
        return "bool"
    if kind in ("i", "u"):
        return "int"
    if kind == "f":
        return "float"
    if kind == "c":
        return "complex"
    if kind == "V" and str(dtype).startswith(("float", "bfloat")):
        return "float"
    return "other"


def _not_real(name: str, value: object, what: str = "") -> TypeError:
    detail = f" ({what})" if what else ""
    return TypeError(f"{name} must be a real number{detail}, got {name}={_show(value)}")


def _to_python_number(value: Any, *, name: str) -> int | float:
    """A concrete real scalar as a Python ``int`` or ``float``; raises for anything else."""
    if isinstance(value, (bool, str, bytes)) or type(value).__name__ == "bool_":
        raise _not_real(name, value, type(value).__name__)
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        shape = tuple(value.shape)
        if shape != ():
            raise ValueError(f"{name} must be a scalar, got {name} of shape {shape}")
        family = _dtype_family(value.dtype)
        if family != "int" and family != "float":
            raise _not_real(name, value, f"dtype {value.dtype}")
        if family == "int":
            return int(value)
        return float(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except (OverflowError, ValueError, TypeError):
            raise _not_real(name, value) from None
    if isinstance(value, numbers.Complex):
        raise _not_real(name, value, "complex")
    raise _not_real(name, value, type(value).__name__)


def _check_traced(value: Any, *, name: str) -> Any:
    shape = tuple(getattr(value, "shape", ()))
    if shape != ():
        raise ValueError(f"{name} must be a scalar, got {name} of shape {shape}")
    family = _dtype_family(getattr(value, "dtype", None))
    if family != "int" and family != "float":
        raise _not_real(name, value, f"dtype {getattr(value, 'dtype', None)}")
    return value


def check_real_scalar(
    value: object,
    *,
    name: str,
    traced_ok: bool = False,
    finite: bool = True,
    minimum: float | None = None,
) -> Any:
    """Return a real scalar as a Python ``float`` (or, if traced and ``traced_ok``, as is).

    Accepts Python ints and floats, numpy scalars and concrete 0-d numpy/JAX arrays of an
    integer or floating dtype. Refuses (``TypeError``) bools, complex numbers (Python,
    numpy or array: no imaginary part is ever dropped), strings and string arrays, other
    objects, and traced values unless ``traced_ok``; refuses (``ValueError``) arrays of
    another shape than ``()``, integers too large for a float64 (``10**400``), and with
    ``finite`` non-finite values, with ``minimum`` values below it. Checks on the value
    (finite, minimum) only apply to concrete values.
    """
    value = _unwrap(value)
    if is_traced(value):
        if not traced_ok:
            raise TypeError(
                f"{name} must be a concrete number here, got a traced value ({_show(value)}); "
                f"pass {name} as a Python or numpy number"
            )
        return _check_traced(value, name=name)
    number = _to_python_number(value, name=name)
    try:
        v = float(number)
    except OverflowError:
        raise ValueError(f"{name} must be finite (representable as a float64), got {name}={_show(number)}") from None
    if finite and not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {name}={v!r}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum!r}, got {name}={v!r}")
    return v


def check_probability(p: object, *, name: str = "p", traced_ok: bool = True) -> Any:
    """Return a probability in ``[0, 1]`` as a Python float (or a traced scalar as is).

    NaN is refused. ``ValueError``/``TypeError`` name ``name``.
    """
    value = check_real_scalar(p, name=name, traced_ok=traced_ok, finite=False)
    if isinstance(value, float) and not (0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {name}={value!r}")
    return value


def check_weight(weight: object, dtype: object = None, *, name: str = "weight", traced_ok: bool = True) -> Any:
    """Return a finite real weight as a Python float (or a traced scalar as is).

    With ``dtype`` (the target's dtype), a concrete weight must also be finite once
    rounded to that dtype: ``weight=4e38`` on a float32 target is refused, since every
    spike would add an infinity. Traced weights are checked by shape and dtype only.
    """
    value = check_real_scalar(weight, name=name, traced_ok=traced_ok)
    if dtype is not None and isinstance(value, float):
        import ml_dtypes  # finfo that knows bfloat16 on every numpy (np.finfo does not on all)
        import numpy as np

        dt = np.dtype(cast(Any, dtype))
        with np.errstate(over="ignore"):
            rounded = np.asarray(value).astype(dt)
        if not np.isfinite(rounded.astype(np.float64)):
            raise ValueError(
                f"{name} must be finite in the target's dtype {dt} (largest finite value "
                f"{float(ml_dtypes.finfo(dt).max)!r}), got {name}={value!r}"
            )
    return value


def check_num_input(num_input: object, *, name: str = "num_input") -> int:
    """Return ``num_input`` as an int if it is an integer in ``[1, 2**31 - 1]``.

    Python and numpy integers and concrete 0-d integer arrays are accepted. Raises
    ``TypeError`` (not an integer: bools, floats, traced values) or ``ValueError`` (out of
    range), naming ``name`` and the value.
    """
    value = _unwrap(num_input)
    if is_traced(value):
        raise TypeError(f"{name} must be a concrete integer (it sizes the sampling table), got a traced value")
    is_int_array = hasattr(value, "dtype") and hasattr(value, "shape") and _dtype_family(value.dtype) == "int"
    if is_int_array and tuple(value.shape) != ():
        raise ValueError(f"{name} must be a scalar, got {name} of shape {tuple(value.shape)}")
    if not is_int_array and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an integer, got {name}={_show(num_input)}")
    n = int(value)
    if not 1 <= n <= MAX_NUM_INPUT:
        raise ValueError(f"{name} must be in [1, {MAX_NUM_INPUT}], got {name}={_show(n)}")
    return n


def check_seed(seed: object, *, name: str = "seed") -> int | None:
    """Return ``seed`` as an int in ``[-2**63, 2**63 - 1]``, or ``None`` for ``None``.

    Python and numpy integers and concrete 0-d integer arrays are accepted; bools, floats
    and traced values are refused (``TypeError``), out-of-range integers with a
    ``ValueError`` naming ``name``.
    """
    if seed is None:
        return None
    value = _unwrap(seed)
    if is_traced(value):
        raise TypeError(f"{name} must be a concrete integer or None, got a traced value")
    is_int_array = hasattr(value, "dtype") and hasattr(value, "shape") and _dtype_family(value.dtype) == "int"
    if is_int_array and tuple(value.shape) != ():
        raise ValueError(f"{name} must be a scalar, got {name} of shape {tuple(value.shape)}")
    if not is_int_array and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an integer or None, got {name}={_show(seed)}")
    s = int(value)
    if not MIN_SEED <= s <= MAX_SEED:
        raise ValueError(f"{name} must be in [-2**63, 2**63 - 1], got {name}={_show(s)}")
    return s


def check_key(key: object, *, name: str = "key") -> Any:
    """Return a JAX PRNG key as the ``uint32[2]`` threefry words the sampler uses.

    Accepted: a typed key of any implementation (``jax.random.key``, including ``rbg``
    and ``unsafe_rbg`` keys), or raw key data, a 1-d ``uint32`` array of even length >= 2
    (``jax.random.PRNGKey`` under any ``jax_default_prng_impl``). The words are a
    deterministic function of the key data alone:

    - two words (threefry keys): the words themselves;
    - more (``rbg``: four): ``w = threefry2x32(k=d[0:2], x=d[2:4])``, then folded with
      each further pair the same way. Integer operations only, so the same key gives the
      same words on every backend.

    Raises ``TypeError`` for an integer or non-array, ``ValueError`` naming ``name`` for
    a key array of several keys or data of another dtype or shape.
    """
    import jax
    import jax.numpy as jnp

    if isinstance(key, numbers.Number) or type(key).__name__ in ("bool_", "str"):
        raise TypeError(f"{name} must be a JAX PRNG key, got {name}={_show(key)}; use jax.random.key({_show(key)})")
    data = _unwrap(key)
    if not hasattr(data, "dtype") or not hasattr(data, "shape"):
        raise TypeError(f"{name} must be a JAX PRNG key, got {name}={_show(key)}")
    if jnp.issubdtype(data.dtype, jax.dtypes.prng_key):
        if tuple(data.shape) != ():
            raise ValueError(f"{name} must be a single key, got a key array of shape {tuple(data.shape)}")
        data = jax.random.key_data(data)
    data = jnp.asarray(data)
    length = data.shape[0] if data.ndim == 1 else 0
    if data.dtype != jnp.uint32 or length < 2 or length % 2:
        raise ValueError(
            f"{name} must be a PRNG key (typed, or raw uint32 key data of even length such as "
            f"uint32[2]), got {name} of shape {tuple(data.shape)} and dtype {data.dtype}"
        )
    if length == 2:
        return data
    from .ops._jax_compat import threefry_2x32

    words = data[:2]
    for i in range(2, length, 2):
        words = threefry_2x32(words, data[i : i + 2])
    return words


def check_target_dtype(dtype: object, *, name: str = "target") -> Any:
    """Return ``dtype`` as a numpy dtype if it is one the sampler adds to (:data:`TARGET_DTYPES`).

    Integer, bool, complex and float8 (or other) dtypes are refused with a ``TypeError``
    naming ``name`` and the dtype.
    """
    import numpy as np

    try:
        dt = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        dt = None
    if dt is None or str(dt) not in TARGET_DTYPES:
        raise TypeError(f"{name} must have a floating dtype ({', '.join(TARGET_DTYPES)}), got {name}.dtype={dtype}")
    return dt
