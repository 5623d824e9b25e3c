"""Finding, loading and registering the native ``bpp_poisson_add`` FFI handlers.

The package ships up to two shared libraries in ``brainpy_poisson_plugin/_native/``:

* ``_bpp_cpu``  (always built): the CPU handler, registered for platform ``"cpu"``;
* ``_bpp_cuda`` (built where a CUDA compiler was found): the CUDA handler, registered
  for platform ``"CUDA"`` when this jaxlib has a GPU backend.

Nothing happens at import of this module: the first call of :func:`load` (directly, or
through :func:`available`, which the lowering rules call) loads the libraries with
:mod:`ctypes` and registers the handlers with JAX, once. A missing library or one that
fails to load makes the fused kernel unavailable: one :class:`RuntimeWarning` says so (and
why; it never raises, also under ``-W error``), and the pure-JAX reference is used
instead. ``BRAINPY_POISSON_NATIVE=0`` (any off word, see
:mod:`brainpy_poisson_plugin.switches`) does the same without a warning. Importing the
package never fails because of the native part.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from pathlib import Path

from .. import switches
from ..plugin._warnings import emit_warning

__all__ = [
    "TABLE_TARGET_NAME",
    "ENV_DISABLE",
    "TARGET_NAME",
    "available",
    "cuda_device_problem",
    "library_paths",
    "load",
    "load_error",
    "registered_targets",
]

#: Name of the FFI custom-call target, on every platform.
TARGET_NAME = "bpp_poisson_add"

#: The FFI target that builds sampling tables inside the compiled program (traced ``p``).
TABLE_TARGET_NAME = "bpp_binomial_table"

#: Environment variable that disables the native kernels when set to an off word (``0``, ``off``, ...).
ENV_DISABLE = "BRAINPY_POISSON_NATIVE"

_NATIVE_DIR = Path(__file__).resolve().parent.parent / "_native"

# library stem -> (jax platform name for registration, platform name as seen by lowering
#                  rules, {FFI target name: exported handler symbol})
_LIBRARIES = {
    "_bpp_cpu": ("cpu", "cpu", {TARGET_NAME: "BppPoissonAddCpu", TABLE_TARGET_NAME: "BppBinomialTableCpu"}),
    "_bpp_cuda": ("CUDA", "cuda", {TARGET_NAME: "BppPoissonAddCuda", TABLE_TARGET_NAME: "BppBinomialTableCuda"}),
}

_lock = threading.RLock()
_status: dict[str, str] | None = None  # lowering platform -> status string
_registered: list[str] = []
_handles: dict[str, ctypes.CDLL] = {}  # keep the libraries loaded for the process lifetime
_error: str | None = None
_warned = False


def _library_file(stem: str) -> Path | None:
    if sys.platform == "win32":
        suffixes = (".dll", ".pyd")
    elif sys.platform == "darwin":
        suffixes = (".dylib", ".so")
    else:
        suffixes = (".so",)
    for suffix in suffixes:
        path = _NATIVE_DIR / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def library_paths() -> dict:
    """Return where the native libraries are: ``{"cpu": path or None, "cuda": path or None}``.

    Only looks at the files; loads nothing.
    """
    return {
        lower: (str(p) if (p := _library_file(stem)) is not None else None)
        for stem, (_, lower, _) in _LIBRARIES.items()
    }


def _has_gpu_backend() -> bool:
    import jax

    try:
        return len(jax.devices("gpu")) > 0
    except Exception:
        return False


def cuda_device_problem(lib) -> str | None:
    """Why the loaded CUDA library cannot run on this process's GPU, or ``None`` if it can.

    Asks the library's ``BppCudaCheckDevice``, which asks the CUDA runtime whether one of
    the kernel images built (cubins for sm_80 and sm_90, PTX for newer GPUs) runs on the
    current device; an older GPU (sm_75, say) has none.
    """
    check = getattr(lib, "BppCudaCheckDevice", None)
    if check is None:
        return "the CUDA library has no BppCudaCheckDevice (stale build?)"
    major, minor = ctypes.c_int(-1), ctypes.c_int(-1)
    msg = ctypes.create_string_buffer(256)
    if hasattr(check, "restype"):  # a ctypes function (tests pass a stand-in)
        check.restype = ctypes.c_int
    rc = check(ctypes.byref(major), ctypes.byref(minor), msg, ctypes.c_int(len(msg)))
    if rc == 0:
        return None
    return msg.value.decode("utf-8", "replace") or f"CUDA error {rc}"


def _warn_once(reason: str) -> None:
    global _warned
    if _warned:
        return
    _warned = True
    # Never raises (under -W error it goes to stderr): the fallback is the same on every call.
    emit_warning(
        f"brainpy_poisson_plugin: the fused native kernel is unavailable ({reason}); "
        "the pure-JAX reference implementation will be used instead (same results, slower).",
        RuntimeWarning,
        stacklevel=4,
    )


def load() -> dict:
    """Load and register the native handlers (once; later calls return the same result).

    Returns:
        ``{platform: status}`` for ``"cpu"`` and ``"cuda"``; the status is
        ``"registered"``, or a short reason such as ``"disabled by BRAINPY_POISSON_NATIVE=0"``,
        ``"not built"``, ``"no GPU backend"``, ``"unsupported GPU: ..."`` (no kernel image
        for this GPU's compute capability: the reference runs there, with one warning) or
        ``"load failed: ..."``.
    """
    global _status, _error
    with _lock:
        if _status is not None:
            return dict(_status)
        status: dict[str, str] = {}
        if not switches.get(switches.NATIVE):  # switched off on purpose: no warning
            reason = f"disabled by {ENV_DISABLE}={(switches.raw(switches.NATIVE) or '').strip()}"
            status = {"cpu": reason, "cuda": reason}
            _error = reason
            _status = status
            return dict(status)
        switches.get(switches.NUM_THREADS)  # the CPU library reads it too: warn (once) if invalid

        from ._jax_compat import jax_ffi

        for stem, (jax_platform, lower, targets) in _LIBRARIES.items():
            path = _library_file(stem)
            if path is None:
                status[lower] = "not built"
                continue
            if lower == "cuda" and not _has_gpu_backend():
                status[lower] = "no GPU backend"
                continue
            try:
                lib = ctypes.cdll.LoadLibrary(str(path))
                if lower == "cuda" and (problem := cuda_device_problem(lib)) is not None:
                    status[lower] = f"unsupported GPU: {problem}"
                    continue
                handlers = {name: getattr(lib, symbol) for name, symbol in targets.items()}
                for name, fn in handlers.items():
                    jax_ffi.register_ffi_target(name, jax_ffi.pycapsule(fn), platform=jax_platform)
            except Exception as exc:
                status[lower] = f"load failed: {type(exc).__name__}: {exc}"
                continue
            _handles[lower] = lib
            _registered.extend(f"{name}@{jax_platform}" for name in targets)
            status[lower] = "registered"

        if status.get("cpu") != "registered":
            cpu = status.get("cpu", "not built")
            _error = f"CPU library {cpu}" + (f" (looked in {_NATIVE_DIR})" if cpu == "not built" else "")
            _warn_once(_error)
        elif status.get("cuda", "").startswith(("load failed", "unsupported GPU")):
            _error = f"CUDA library {status['cuda']}"
            _warn_once(_error)
        elif status.get("cuda") == "not built" and _has_gpu_backend():
            _error = "this installation was built without the CUDA library, but JAX has a GPU backend"
            _warn_once(_error)
        _status = status
        return dict(status)


def available(platform: str) -> bool:
    """Whether the fused kernel is registered for ``platform`` (``"cpu"`` or ``"cuda"``,
    the names used by JAX lowering rules). Loads the libraries on first use."""
    return load().get(platform.lower()) == "registered"


def registered_targets() -> list[str]:
    """The FFI targets registered so far, as ``"name@platform"`` strings (empty before
    :func:`load` has run)."""
    with _lock:
        return list(_registered)


def load_error() -> str | None:
    """Why the fused kernel is unavailable (CPU library missing or failed to load, CUDA
    library failed to load, or disabled by the environment), or ``None``. Loads the
    libraries first if that has not happened yet."""
    load()
    return _error
