"""The plugin as a user gets it: a real wheel, installed into fresh virtual environments,
exercised in subprocesses (not the source tree, not this process).

One session fixture builds the wheel once (``pip wheel --no-build-isolation --no-deps``,
reusing the CMake build directory; or takes ``BRAINPY_POISSON_TEST_WHEEL``) and creates
two venvs with ``venv --without-pip``:

- ``healthy``: the wheel installed with ``pip install --no-deps``;
- ``broken``: the same plus two deliberately broken plugins built from
  ``tests/fixtures/`` (one raises at import, one raises in a hook).

Neither venv re-installs BrainPy/JAX: a ``.pth`` line appends this environment's
site-packages to ``sys.path``. Path lines in a ``.pth`` are appended *after* the venv's own
site-packages (so the fresh install wins) and the ``.pth`` files found there are not
processed (so only the fresh venv's autoload hook runs). ``importlib.metadata`` lists each
distribution once, from the first ``sys.path`` entry that has it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PTH_NAME = "brainpy_poisson_plugin_autoload.pth"
PLUGIN_CLASS = "brainpy_poisson_plugin.host.poisson_input.PoissonInput"
#: Where BrainPy defines its PoissonInput: 2.7+ first, then 2.4.3-2.6. The subprocesses
#: find the one that exists at run time (``DEFINING`` below); the tests never assume which.
HOST_DEFINING_MODULES = ("brainpy.dyn.projections.inputs", "brainpy._src.dyn.projections.inputs")

pytestmark = pytest.mark.slow

#: Variables of the outer environment that would change what the subprocesses do.
_SCRUB = (
    "BRAINPY_POISSON_PLUGIN",
    "BRAINPY_DISABLE_PLUGIN_AUTOLOAD",
    "BRAINPY_POISSON_FAKE_HOST_VERSION",
    "BRAINPY_POISSON_NATIVE",
    "BRAINPY_POISSON_IMPL",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONWARNINGS",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "VIRTUAL_ENV",
)


# --------------------------------------------------------------------------------------
# Building and installing
# --------------------------------------------------------------------------------------


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_fixture_wheel(src: Path, out: Path) -> Path:
    """Build a pure-Python wheel from a fixture dir (``pyproject.toml`` + top-level modules).

    Written here (zipfile + the wheel spec) so the fixtures need no build backend.
    """
    meta = tomllib.loads((src / "pyproject.toml").read_text())["project"]
    name, version = meta["name"], meta["version"]
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files: dict[str, bytes] = {p.name: p.read_bytes() for p in sorted(src.glob("*.py"))}
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: bpp-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    eps = []
    for group, entries in meta.get("entry-points", {}).items():
        eps.append(f"[{group}]")
        eps += [f"{k} = {v}" for k, v in entries.items()]
        eps.append("")
    files[f"{info}/entry_points.txt"] = "\n".join(eps).encode()
    record = [_record_line(k, v) for k, v in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = out / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in files.items():
            zf.writestr(k, v)
    return path


def outer_site_packages() -> list[str]:
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


@dataclass
class Venv:
    root: Path

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")

    @property
    def site(self) -> Path:
        return Path(
            subprocess.run(
                [self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )

    def script(self, name: str) -> str:
        return str(self.root / "bin" / name)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        env["VIRTUAL_ENV"] = str(self.root)
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["JAX_PLATFORMS"] = "cpu"
        env.update(extra)
        return env

    def run(
        self, args: list[str], *, cwd: Path | None = None, timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            env=self.env(**env),
            cwd=cwd or self.root,
            timeout=timeout,
        )

    def py(self, code: str, *args: str, **env: str) -> subprocess.CompletedProcess:
        return self.run([self.python, "-c", code, *args], **env)


def make_venv(root: Path, wheels: list[Path]) -> Venv:
    """A fresh venv (no pip) with ``wheels`` pip-installed and the outer deps reachable."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    venv = Venv(root)
    if wheels:
        # Before the outer environment is linked in: pip must see an empty venv (the outer
        # one may have the package installed already, and pip would then skip it).
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                venv.python,
                "install",
                "--no-deps",
                "--no-index",
                "-q",
                *map(str, wheels),
            ],
            check=True,
        )
    link_outer_environment(venv)
    return venv


def link_outer_environment(venv: Venv) -> None:
    """Make this environment's packages importable in ``venv``, after its own."""
    # Path lines are appended to sys.path after the venv's own site-packages; the name
    # sorts after the plugin's own .pth.
    (venv.site / "zz_outer_environment.pth").write_text("\n".join(outer_site_packages()) + "\n")


@pytest.fixture(scope="session")
def plugin_wheel(tmp_path_factory) -> Path:
    given = os.environ.get("BRAINPY_POISSON_TEST_WHEEL")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("wheel")
    # A CMake build directory per jaxlib: a directory configured for another stack's
    # headers must not be reused (the first build here is a full one, later ones are not).
    from importlib.metadata import version

    build_dir = REPO / "build" / f"test-wheel-jaxlib-{version('jaxlib')}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "-q",
            "-C",
            f"build-dir={build_dir}",
            str(REPO),
            "-w",
            str(out),
        ],
        check=True,
    )
    (wheel,) = out.glob("brainpy_poisson_plugin-*.whl")
    return wheel


@pytest.fixture(scope="session")
def fixture_wheels(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("fixture_wheels")
    return [build_fixture_wheel(p, out) for p in sorted(FIXTURES.iterdir()) if (p / "pyproject.toml").exists()]


@pytest.fixture(scope="session")
def healthy(tmp_path_factory, plugin_wheel) -> Venv:
    return make_venv(tmp_path_factory.mktemp("venvs") / "healthy", [plugin_wheel])


@pytest.fixture(scope="session")
def broken(tmp_path_factory, plugin_wheel, fixture_wheels) -> Venv:
    return make_venv(tmp_path_factory.mktemp("venvs") / "broken", [plugin_wheel, *fixture_wheels])


def _json_line(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# Run-time discovery of the host's defining module, for the subprocesses (plain code, no
# plugin import): the first of HOST_DEFINING_MODULES that imports and has a PoissonInput.
# Its qualified name must then be "<that module>.PoissonInput", i.e. the class there is
# the one the host defined, not something bound there later.
DEFINING = r"""
import importlib as _importlib
def defining_module():
    for _name in %r:
        try:
            _mod = _importlib.import_module(_name)
        except ImportError:
            continue
        if "PoissonInput" in vars(_mod):
            return _mod
    raise ImportError("no module of %r defines PoissonInput")
""" % (HOST_DEFINING_MODULES, HOST_DEFINING_MODULES)  # noqa: UP031 - a code template with literal braces

# What a process sees after a plain `import brainpy` (no mention of the plugin).
# "synapses" is the module's own binding (its __dict__); "synapses_getattr" is what
# attribute access answers, including a host module __getattr__ (BrainPy 2.6 serves the
# deprecated bp.synapses.PoissonInput that way), with the warning categories it raised.
PROBE = (
    r"""
import json, sys, warnings
warnings.simplefilter("always")
user_mentions_plugin = any(m.startswith("brainpy_poisson_plugin.host") for m in sys.modules)
import brainpy as bp
def qual(obj):
    return None if obj is None else f"{obj.__module__}.{obj.__qualname__}"
"""
    + DEFINING
    + r"""
inputs = defining_module()
with warnings.catch_warnings(record=True) as _caught:
    warnings.simplefilter("always")
    _syn = getattr(bp.synapses, "PoissonInput", None)
print(json.dumps({
    "host_touched_before_import": user_mentions_plugin,
    "dyn": qual(bp.dyn.PoissonInput),
    "projections": qual(getattr(bp.dyn.projections, "PoissonInput", None)),
    "synapses": qual(bp.synapses.__dict__.get("PoissonInput")),
    "synapses_getattr": [qual(_syn), sorted({w.category.__name__ for w in _caught})],
    "defining_module": inputs.__name__,
    "defining": qual(inputs.PoissonInput),
    "subclass": issubclass(bp.dyn.PoissonInput, inputs.PoissonInput),
    "loader": type(bp.__loader__).__name__,
}))
"""
)


def _host_class(out: dict) -> str:
    """The host class a probe found in the defining module, checked to be the host's own."""
    assert out["defining_module"] in HOST_DEFINING_MODULES
    assert out["defining"] == f"{out['defining_module']}.PoissonInput"  # defined there, not rebound there
    return out["defining"]


@pytest.fixture(scope="session")
def pristine(healthy) -> dict:
    """PROBE in the healthy venv with no plugin loaded at all: the untouched host."""
    out = _json_line(healthy.py(PROBE, BRAINPY_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert out["dyn"] == _host_class(out)
    return out


# --------------------------------------------------------------------------------------
# The .pth hook
# --------------------------------------------------------------------------------------


def test_wheel_puts_the_pth_at_site_packages_root(healthy):
    pth = healthy.site / PTH_NAME
    assert pth.is_file()
    lines = [ln for ln in pth.read_text().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("import ")


def test_pth_imports_nothing_heavy_at_startup(healthy):
    """A module-set check (the timing is in benchmarks/startup_cost.py)."""
    proc = healthy.py(
        "import sys; "
        "mods = sorted(sys.modules); "  # before `import json` (which imports re)
        "import json; "
        "a = sys.modules.get('_brainpy_poisson_plugin_autoload'); "
        "print(json.dumps({'mods': mods, 'state': getattr(a, 'state', None), 'by': getattr(a, 'started_by', None), "
        "'hook': any(type(f).__name__ == '_BrainPyImportWatcher' for f in sys.meta_path)}))"
    )
    out = _json_line(proc)
    assert out["state"] == "waiting" and out["by"] == "pth" and out["hook"]
    heavy = (
        "jax",
        "jaxlib",
        "brainpy",
        "numpy",
        "pluggy",
        "packaging",
        "typing",
        "re",
        "importlib.metadata",
        "brainpy_poisson_plugin",
    )  # not even the package itself
    loaded = [m for m in out["mods"] if m.split(".")[0] in heavy or m in heavy]
    assert not loaded, f"the .pth hook pulled in {loaded}"


def test_import_brainpy_swaps_without_user_code(healthy):
    out = _json_line(healthy.py(PROBE))
    assert out["host_touched_before_import"] is False
    assert out["dyn"] == PLUGIN_CLASS
    assert out["synapses"] == PLUGIN_CLASS
    assert out["projections"] == PLUGIN_CLASS
    assert out["synapses_getattr"] == [PLUGIN_CLASS, []]  # the binding shadows any host __getattr__
    _host_class(out)  # the defining module is never modified
    assert out["subclass"] is True
    assert out["loader"] == "SourceFileLoader"  # the proxy loader was removed again


def test_unchanged_model_script_runs(healthy):
    out = _json_line(healthy.run([healthy.python, str(FIXTURES / "unchanged_model.py")]))
    assert out["dyn_class"] == PLUGIN_CLASS
    assert out["synapses_class"] == PLUGIN_CLASS
    assert out["is_projection"] is True
    assert out["V_finite"] and out["V_moved"]
    assert out["spikes"] > 0


# --------------------------------------------------------------------------------------
# Switches, deactivate, version gate
# --------------------------------------------------------------------------------------

# A snapshot of every module the swap could touch, and of the defining module: the
# Poisson names each binds, how many attributes it has, its module __getattr__ hook,
# and what `module.PoissonInput` answers through attribute access (the object, or the
# AttributeError, and the warning categories raised: BrainPy 2.6's bp.synapses answers
# with a DeprecationWarning from its module __getattr__, 2.7+ has no such name).
SNAPSHOT = (
    r"""
import json, sys, warnings
import brainpy as bp
"""
    + DEFINING
    + r"""
def _qual(v):
    return f"{getattr(v, '__module__', '?')}.{getattr(v, '__qualname__', type(v).__name__)}"
def _access(mod):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            got = _qual(mod.PoissonInput)
        except AttributeError as exc:
            got = f"AttributeError: {exc}"
    return [got, sorted({w.category.__name__ for w in caught})]
def snap():
    out = {}
    defining = defining_module().__name__
    out["defining_module"] = defining
    # brainpy.state where the host has it (2.8: a shim over brainpy_state; 2.9: bundled),
    # with the module that defines its inputs.
    state_mods = [m for m in ("brainpy.state", "brainpy_state", "brainpy.state.inputs",
                              "brainpy_state._brainpy.inputs") if m in sys.modules]
    out["state_modules"] = state_mods
    for modname in ("brainpy.dyn", "brainpy.dyn.projections", "brainpy.synapses", defining, *state_mods):
        mod = sys.modules[modname]
        out[modname] = {k: _qual(v) for k, v in vars(mod).items() if "oisson" in k}
        out[modname + ":keys"] = len(vars(mod))
        out[modname + ":getattr"] = None if vars(mod).get("__getattr__") is None else _qual(vars(mod)["__getattr__"])
        out[modname + ":access"] = _access(mod)
    return out
"""
)


def test_switch_off_leaves_host_untouched(healthy, pristine):
    code = (
        SNAPSHOT
        + r"""
from brainpy_poisson_plugin.plugin import swap, manager
st = swap.status()
print(json.dumps({"snap": snap(), "active": st.active, "reason": st.reason, "deliberate": st.deliberate,
                  "loaded": [r.name for r in manager.get_manager().plugin_records() if r.status == "loaded"]}))
"""
    )
    out = _json_line(healthy.py(code, BRAINPY_POISSON_PLUGIN="0"))
    assert out["active"] is False and out["deliberate"] is True
    assert "BRAINPY_POISSON_PLUGIN=0" in out["reason"]
    assert out["loaded"] == ["poisson"]  # the plugin is loaded, it just does not swap
    snap = out["snap"]
    host = _host_class(
        {"defining_module": snap["defining_module"], "defining": snap[snap["defining_module"]]["PoissonInput"]}
    )
    assert host == pristine["defining"]
    assert snap["brainpy.dyn"]["PoissonInput"] == host
    assert "PoissonInput" not in snap["brainpy.synapses"]
    # ...and attribute access answers as on an untouched host (2.6: the host's deprecated
    # alias, from its module __getattr__, with its DeprecationWarning; 2.7+: AttributeError).
    if pristine["synapses_getattr"][0] is None:
        assert snap["brainpy.synapses:access"][0].startswith("AttributeError")
    else:
        assert snap["brainpy.synapses:access"] == pristine["synapses_getattr"]
    # The whole snapshot equals the one of a process where no plugin was loaded at all.
    untouched = _json_line(healthy.py(SNAPSHOT + "print(json.dumps(snap()))", BRAINPY_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert snap == untouched


def test_deactivate_restores_host_objects_exactly(healthy):
    code = (
        SNAPSHOT
        + r"""
from brainpy_poisson_plugin.plugin import swap
from brainpy_poisson_plugin.host.compat import original_poisson_input_class
host = original_poisson_input_class()
hooks0 = {m: vars(sys.modules[m]).get("__getattr__")
          for m in ("brainpy.dyn", "brainpy.dyn.projections", "brainpy.synapses")}
active0 = swap.is_active()
swapped = snap()
restored = swap.deactivate()
after = snap()
same_objects = (host is defining_module().PoissonInput and bp.dyn.PoissonInput is host
                and bp.dyn.projections.PoissonInput is host)
hooks_kept = all(vars(sys.modules[m]).get("__getattr__") is hooks0[m] for m in hooks0)
again = swap.activate()
with swap.swapped():
    inside_cm = swap.is_active()
still = swap.is_active()
swap.deactivate()
with swap.swapped() as active_in_cm:
    inside2 = bp.dyn.PoissonInput is not host
after_cm = snap()
print(json.dumps({"active0": active0, "restored": sorted(restored), "after": after, "swapped": swapped,
                  "same_objects": same_objects, "hooks_kept": hooks_kept,
                  "again": again, "inside_cm": inside_cm, "still": still,
                  "inside2": inside2 and active_in_cm, "after_cm": after_cm}))
"""
    )
    out = _json_line(healthy.py(code))
    baseline = _json_line(healthy.py(SNAPSHOT + "print(json.dumps(snap()))", BRAINPY_POISSON_PLUGIN="0"))
    untouched = _json_line(healthy.py(SNAPSHOT + "print(json.dumps(snap()))", BRAINPY_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert baseline == untouched
    assert out["active0"] is True
    # Every name the swap rebound, including bp.dyn.projections.PoissonInput where the host
    # re-exports it there (2.6: a plain module; 2.7+: a package), and nothing else.
    expected = ["brainpy.dyn.PoissonInput", "brainpy.synapses.PoissonInput"]
    if "PoissonInput" in baseline["brainpy.dyn.projections"]:
        expected.insert(1, "brainpy.dyn.projections.PoissonInput")
    for modname in ("brainpy.state", "brainpy_state"):  # the brainpy.state names, where the host has them
        if modname in baseline["state_modules"]:
            expected += [f"{modname}.PoissonInput", f"{modname}.poisson_input"]
    assert out["restored"] == sorted(expected)
    # Same names, same objects, same number of module attributes, the same module
    # __getattr__ hooks, and attribute access answers the same (incl. warnings).
    assert out["after"] == baseline
    assert out["swapped"]["brainpy.synapses:access"] == [PLUGIN_CLASS, []]
    assert out["swapped"] != baseline
    assert out["same_objects"] is True and out["hooks_kept"] is True
    assert out["again"] is True and out["inside_cm"] is True and out["still"] is True
    assert out["inside2"] is True
    assert out["after_cm"] == baseline


def test_disable_autoload_loads_no_entry_point(healthy):
    code = (
        r"""
import json, sys
import brainpy as bp
"""
        + DEFINING
        + r"""
from brainpy_poisson_plugin.plugin import autoload
host = defining_module().PoissonInput
print(json.dumps({"dyn": f"{bp.dyn.PoissonInput.__module__}.{bp.dyn.PoissonInput.__qualname__}",
                  "host": f"{host.__module__}.{host.__qualname__}", "is_host": bp.dyn.PoissonInput is host,
                  "state": autoload.state, "pluggy": "pluggy" in sys.modules,
                  "hooks": "brainpy_poisson_plugin.plugin.hooks" in sys.modules}))
"""
    )
    out = _json_line(healthy.py(code, BRAINPY_DISABLE_PLUGIN_AUTOLOAD="1"))
    host = out.pop("host")
    assert host.rpartition(".")[0] in HOST_DEFINING_MODULES and host.endswith(".PoissonInput")
    assert out == {"dyn": host, "is_host": True, "state": "disabled", "pluggy": False, "hooks": False}


def test_version_gate_refuses_out_of_range_and_force_overrides(healthy, pristine):
    code = (
        PROBE
        + r"""
from brainpy_poisson_plugin.plugin import swap
print(json.dumps(swap.status().as_dict()))
"""
    )
    proc = healthy.py(code, BRAINPY_POISSON_FAKE_HOST_VERSION="3.0.0")
    assert proc.returncode == 0, proc.stderr
    probe, status = (json.loads(line) for line in proc.stdout.strip().splitlines()[-2:])
    assert probe["dyn"] == _host_class(probe) and probe["synapses"] is None
    assert probe["projections"] == pristine["projections"]
    assert probe["synapses_getattr"] == pristine["synapses_getattr"]  # the host's own answer, untouched
    assert status["active"] is False and "3.0.0" in status["reason"]
    warnings_ = [ln for ln in proc.stderr.splitlines() if "HostVersionWarning:" in ln]
    assert len(warnings_) == 1, proc.stderr
    assert "3.0.0" in warnings_[0] and ">=2.6,<2.10" in warnings_[0]

    proc = healthy.py(code, BRAINPY_POISSON_FAKE_HOST_VERSION="3.0.0", BRAINPY_POISSON_PLUGIN="force")
    assert proc.returncode == 0, proc.stderr
    probe, status = (json.loads(line) for line in proc.stdout.strip().splitlines()[-2:])
    assert probe["dyn"] == PLUGIN_CLASS and probe["synapses"] == PLUGIN_CLASS
    assert status["active"] is True and "force" in status["reason"]
    assert "HostVersionWarning" not in proc.stderr


# --------------------------------------------------------------------------------------
# Broken plugins
# --------------------------------------------------------------------------------------


def test_broken_plugins_are_reported_and_skipped(broken):
    proc = broken.py(PROBE)
    out = _json_line(proc)
    assert out["dyn"] == PLUGIN_CLASS and out["synapses"] == PLUGIN_CLASS  # ours still works
    err = proc.stderr
    assert "BrainPyPluginWarning" in err
    assert "broken_import = bpp_fixture_import_error" in err and "deliberate failure at import" in err
    assert "hook_error = bpp_fixture_hook_error" in err and "deliberate failure in a hook" in err
    assert err.count("broken_import = bpp_fixture_import_error") == 1  # once
    assert err.count("hook_error = bpp_fixture_hook_error") == 1


# --------------------------------------------------------------------------------------
# doctor
# --------------------------------------------------------------------------------------


def test_doctor_healthy(healthy):
    proc = healthy.run([healthy.script("brainpy-poisson"), "doctor"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    for needle in ("python", "brainpy", "jax", "jaxlib", "poisson", "active      yes", "status: OK", "cpu"):
        assert needle in text, text
    proc = healthy.run([healthy.python, "-m", "brainpy_poisson_plugin", "doctor", "--json"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True and report["problems"] == []
    assert report["swap"]["active"] is True
    assert report["autoload"]["started_by"] == "pth"
    assert report["impl"]["platforms"]["cpu"]["auto_picks"] == "fused"
    assert report["native"]["targets"], report["native"]
    assert [p["name"] for p in report["plugins"]] == ["poisson"]
    assert report["plugins"][0]["info"]["supported_host"] == ">=2.6,<2.10"


def _doctor_json(venv: Venv, **env: str) -> tuple[int, dict]:
    proc = venv.run([venv.script("brainpy-poisson"), "doctor", "--json"], **env)
    return proc.returncode, json.loads(proc.stdout)


def test_doctor_native_disabled_on_purpose_is_healthy(healthy):
    rc, report = _doctor_json(healthy, BRAINPY_POISSON_NATIVE="0")
    assert rc == 0, report["problems"]
    assert report["impl"]["platforms"]["cpu"]["auto_picks"] == "reference"
    assert any("BRAINPY_POISSON_NATIVE=0" in n for n in report["notes"])


def test_doctor_switch_off_is_a_note(healthy):
    rc, report = _doctor_json(healthy, BRAINPY_POISSON_PLUGIN="0")
    assert rc == 0 and report["ok"] is not False
    assert any("BRAINPY_POISSON_PLUGIN=0" in n for n in report["notes"])


def test_doctor_broken_plugins_and_version_gate(broken, healthy):
    rc, report = _doctor_json(broken)
    assert rc == 1
    text = " ".join(report["problems"])
    assert "broken_import" in text and "hook_error" in text

    rc, report = _doctor_json(healthy, BRAINPY_POISSON_FAKE_HOST_VERSION="3.0.0")
    assert rc == 1
    assert any("3.0.0" in p and ">=2.6,<2.10" in p for p in report["problems"])


def test_doctor_corrupted_native_library_is_broken(tmp_path, plugin_wheel):
    venv = make_venv(tmp_path / "corrupt", [plugin_wheel])
    libs = list((venv.site / "brainpy_poisson_plugin" / "_native").glob("_bpp_cpu*"))
    assert libs, "the wheel has no CPU library"
    for lib in libs:
        lib.write_bytes(b"this is not a shared library")
    proc = venv.run([venv.script("brainpy-poisson"), "doctor"])
    assert proc.returncode == 1, proc.stdout
    assert "native library failed to load" in proc.stdout
    # ...and BrainPy still imports, with the reference sampler in use.
    out = _json_line(venv.py(PROBE))
    assert out["dyn"] == PLUGIN_CLASS


# --------------------------------------------------------------------------------------
# pytest11 entry point in the installed environment
# --------------------------------------------------------------------------------------


def test_pytest_option_in_installed_env(healthy, tmp_path):
    (tmp_path / "test_user_model.py").write_text(
        "from brainpy_poisson_plugin import config\n"
        "def test_choice(brainpy_poisson_impl):\n"
        "    assert brainpy_poisson_impl == 'reference' == config.default_impl()\n"
    )
    proc = healthy.run(
        [healthy.python, "-m", "pytest", "-p", "no:cacheprovider", "--brainpy-poisson=reference", str(tmp_path)],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "brainpy-poisson: impl=reference" in proc.stdout
    assert "PytestAssertRewriteWarning" not in proc.stdout  # the .pth must not pre-import the package


# --------------------------------------------------------------------------------------
# Editable install
# --------------------------------------------------------------------------------------


def test_editable_install_gets_the_pth_too(tmp_path):
    venv = make_venv(tmp_path / "editable", [])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            venv.python,
            "install",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "--ignore-installed",  # never touch the outer environment's copy
            "-e",
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (venv.site / PTH_NAME).is_file()
    out = _json_line(venv.py(PROBE))
    assert out["dyn"] == PLUGIN_CLASS and out["synapses"] == PLUGIN_CLASS
    # The package comes from the source tree (that is what "editable" means).
    where = venv.py("import brainpy_poisson_plugin.plugin.swap as m; print(m.__file__)")
    assert where.stdout.strip().startswith(str(REPO)), where.stdout + where.stderr
    shutil.rmtree(tmp_path / "editable", ignore_errors=True)


# --------------------------------------------------------------------------------------
# brainpy.state, imported first or only
# --------------------------------------------------------------------------------------

STATE_PROBE = r"""
import json, sys
%s
try:
    import brainpy.state as state_mod
except ImportError:
    print(json.dumps(None)); raise SystemExit(0)
qual = lambda o: f"{o.__module__}.{o.__qualname__}"
print(json.dumps({"cls": qual(state_mod.PoissonInput), "fn": qual(state_mod.poisson_input),
                  "imported_first": %r}))
"""


@pytest.mark.parametrize("statement", ["import brainpy.state", "from brainpy.state import PoissonInput, poisson_input"])
def test_importing_brainpy_state_first_swaps_its_names(healthy, statement):
    out = _json_line(healthy.py(STATE_PROBE % (statement, statement)))
    if out is None:
        pytest.skip("this BrainPy lacks brainpy.state (added in 2.8)")
    assert out["cls"] == "brainpy_poisson_plugin.host.state_inputs.PoissonInput"
    assert out["fn"] == "brainpy_poisson_plugin.host.state_inputs.poisson_input"


# --------------------------------------------------------------------------------------
# pip's plan: installing the wheel next to an installed BrainPy / jax changes neither
# --------------------------------------------------------------------------------------


def test_installing_the_wheel_changes_neither_brainpy_nor_jax(tmp_path, plugin_wheel):
    """A fresh venv that already has this environment's BrainPy and jax (on the newest stack
    BrainPy 2.9.0 and jax 0.12) but not the plugin: pip's plan for the wheel
    (``--dry-run --report``, offline: ``--no-index``) installs the plugin and nothing else."""
    from importlib.metadata import version

    shadow = tmp_path / "outer-without-plugin"
    shadow.mkdir()
    for site in outer_site_packages():
        for entry in Path(site).iterdir():
            if entry.name.lower().startswith(("brainpy_poisson_plugin", "zz_outer")) or (shadow / entry.name).exists():
                continue
            (shadow / entry.name).symlink_to(entry)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    venv = Venv(tmp_path / "venv")
    (venv.site / "zz_outer_environment.pth").write_text(f"{shadow}\n")
    report_path = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            venv.python,
            "install",
            "--dry-run",
            "--no-index",
            "-q",
            "--report",
            str(report_path),
            str(plugin_wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(report_path.read_text())
    planned = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in report["install"]}
    assert planned == {"brainpy-poisson-plugin": planned.get("brainpy-poisson-plugin")}, planned
    seen = json.loads(
        venv.py(
            "import json; from importlib.metadata import version as v; "
            "print(json.dumps([v('brainpy'), v('jax'), v('jaxlib')]))"
        ).stdout
    )
    assert seen == [version("brainpy"), version("jax"), version("jaxlib")]
