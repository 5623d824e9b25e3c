"""The environment switches: one registry (brainpy_poisson_plugin.switches), one vocabulary,
every reader using it, the docs table generated from it, and the behaviour each switch
promises (issue 12 items 6, 9, 10, 16)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from brainpy_poisson_plugin import config, switches
from brainpy_poisson_plugin.plugin import SwitchValueWarning, autoload

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "brainpy_poisson_plugin"

ON_OFF = [s for s in switches.SWITCHES.values() if set(s.values) == set(switches.TRUE_WORDS + switches.FALSE_WORDS)]
WORDS = ["1", "on", "true", "yes", "0", "off", "false", "no"]


def _variants(word: str) -> list[str]:
    return [word, word.upper(), word.capitalize(), f"  {word}\t"]


@pytest.fixture(autouse=True)
def _clean_switches(monkeypatch):
    for name in switches.SWITCHES:
        monkeypatch.delenv(name, raising=False)
    switches._reset_for_tests()
    yield
    switches._reset_for_tests()


def _scrubbed_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAINPY_")}
    env["JAX_PLATFORMS"] = "cpu"
    env.update(extra)
    return env


def _run(code: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args, "-c", textwrap.dedent(code)],
        env=_scrubbed_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(ROOT / "tests"),
    )


def _last_json(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------
# One registry
# --------------------------------------------------------------------------------------


def _names_read_in(text: str) -> set[str]:
    return set(re.findall(r"\b(BRAINPY_[A-Z_]+)\b", text))


def test_every_variable_the_code_mentions_is_a_registered_switch():
    """Python and C++ sources name no BRAINPY_* variable the registry does not own."""
    mentioned: set[str] = set()
    for path in [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.cc"), *PACKAGE.rglob("*.cu"), *PACKAGE.rglob("*.h")]:
        mentioned |= _names_read_in(path.read_text())
    # The .pth file names the autoload module, not a variable.
    assert mentioned - set(switches.SWITCHES) == set()
    # ...and every switch is read somewhere (no dead entry).
    assert set(switches.SWITCHES) <= mentioned


def test_only_the_registry_and_the_startup_hook_read_the_environment():
    readers = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if re.search(r"os\.environ\.get\(|os\.getenv\(", text) and "BRAINPY_" in text:
            readers.append(path.relative_to(PACKAGE).as_posix())
    assert sorted(readers) == ["plugin/autoload.py", "switches.py"]


@pytest.mark.parametrize("switch", ON_OFF, ids=lambda s: s.name)
@pytest.mark.parametrize("word", WORDS)
def test_on_off_words_in_any_case(switch, word, monkeypatch):
    expected_on = word in ("1", "on", "true", "yes")
    for text in _variants(word):
        monkeypatch.setenv(switch.name, text)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert switches.get(switch) is expected_on, text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "auto"),
        ("auto", "auto"),
        ("AUTO", "auto"),
        ("1", "auto"),
        ("Yes", "auto"),
        ("on", "auto"),
        ("0", "off"),
        ("OFF", "off"),
        ("false", "off"),
        ("No", "off"),
        ("force", "force"),
        (" Force ", "force"),
        ("disabled", "off"),  # accepted before the registry; kept
        ("Disable", "off"),
    ],
)
def test_plugin_switch_vocabulary(text, expected, monkeypatch):
    from brainpy_poisson_plugin.plugin import version_gate

    monkeypatch.setenv("BRAINPY_POISSON_PLUGIN", text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert version_gate.switch() == expected


@pytest.mark.parametrize(("text", "expected"), [("0", 0), ("1", 1), (" 8 ", 8), ("64", 64), ("", 0)])
def test_num_threads_parses_plain_integers(text, expected, monkeypatch):
    monkeypatch.setenv("BRAINPY_POISSON_NUM_THREADS", text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert switches.get(switches.NUM_THREADS) == expected


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("BRAINPY_POISSON_NATIVE", "maybe"),
        ("BRAINPY_POISSON_PLUGIN", "sometimes"),
        ("BRAINPY_DISABLE_PLUGIN_AUTOLOAD", "2"),
        ("BRAINPY_POISSON_NUM_THREADS", "four"),
        ("BRAINPY_POISSON_NUM_THREADS", "-2"),
        ("BRAINPY_POISSON_NUM_THREADS", "4x"),
        ("BRAINPY_POISSON_NUM_THREADS", "2.5"),
        ("BRAINPY_PLUGIN_DEBUG", "verbose"),
    ],
)
def test_unknown_value_warns_once_by_name_and_gives_the_default(name, bad, monkeypatch):
    switch = switches.SWITCHES[name]
    monkeypatch.setenv(name, bad)
    with pytest.warns(SwitchValueWarning) as record:
        assert switches.get(switch) == switch.default
    assert len(record) == 1
    assert name in str(record[0].message) and repr(bad) in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second read is silent
        assert switches.get(switch) == switch.default


def test_unknown_value_warning_never_raises_under_error_filter(monkeypatch, capsys):
    monkeypatch.setenv("BRAINPY_POISSON_NATIVE", "perhaps")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert switches.get(switches.NATIVE) is True
    assert "BRAINPY_POISSON_NATIVE='perhaps'" in capsys.readouterr().err


def test_describe_never_warns_and_reports_the_problem(monkeypatch):
    monkeypatch.setenv("BRAINPY_POISSON_NUM_THREADS", "lots")
    monkeypatch.setenv("BRAINPY_POISSON_IMPL", "garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        threads = switches.describe("BRAINPY_POISSON_NUM_THREADS")
        impl = switches.describe("BRAINPY_POISSON_IMPL")
    assert threads["value"] == 0 and threads["raw"] == "lots" and "BRAINPY_POISSON_NUM_THREADS" in threads["error"]
    assert impl["value"] is None and "BRAINPY_POISSON_IMPL='garbage'" in impl["error"]


# --------------------------------------------------------------------------------------
# The start-up hook's copy of the on/off parse
# --------------------------------------------------------------------------------------


def test_autoload_copy_of_the_words_is_the_registrys():
    assert autoload._TRUE_WORDS == switches.TRUE_WORDS
    assert autoload._FALSE_WORDS == switches.FALSE_WORDS


@pytest.mark.parametrize("text", [v for w in [*WORDS, "", "2", "garbage", "disabled", "tru"] for v in _variants(w)])
def test_autoload_parse_agrees_with_the_registry(text, monkeypatch):
    assert autoload._parse_flag(text) == switches.parse_flag(text)
    monkeypatch.setenv("BRAINPY_DISABLE_PLUGIN_AUTOLOAD", text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SwitchValueWarning)
        assert autoload._disabled() is switches.get(switches.DISABLE_AUTOLOAD)


def test_autoload_module_stays_import_light():
    """The hook's source imports nothing but sys and os (it runs at interpreter start)."""
    source = Path(autoload.__file__).read_text()
    top_level = re.findall(r"^(?:import|from) (\S+)", source, flags=re.M)
    assert sorted(set(top_level)) == ["os", "sys"]


# --------------------------------------------------------------------------------------
# Documentation
# --------------------------------------------------------------------------------------


def test_troubleshooting_switch_table_is_the_registrys():
    page = (ROOT / "docs" / "troubleshooting.md").read_text()
    assert switches.markdown_table() in page
    for name in switches.SWITCHES:
        assert f"`{name}`" in page


# --------------------------------------------------------------------------------------
# BRAINPY_POISSON_IMPL (issue 12 item 6)
# --------------------------------------------------------------------------------------


def test_bad_impl_variable_is_an_error_naming_it(monkeypatch):
    monkeypatch.setenv("BRAINPY_POISSON_IMPL", "garbage")
    with pytest.raises(ValueError, match=r"BRAINPY_POISSON_IMPL='garbage'.*auto, fused, reference, host"):
        config.default_impl()
    # An in-process choice takes precedence over the variable.
    with config.using_impl("reference"):
        assert config.default_impl() == "reference"


@pytest.mark.parametrize(("text", "expected"), [("FUSED", "fused"), (" reference ", "reference"), ("", "auto")])
def test_impl_variable_is_case_insensitive(text, expected, monkeypatch):
    monkeypatch.setenv("BRAINPY_POISSON_IMPL", text)
    assert config.default_impl() == expected


def test_doctor_json_survives_a_bad_impl_variable():
    proc = subprocess.run(
        [sys.executable, "-m", "brainpy_poisson_plugin", "doctor", "--json"],
        env=_scrubbed_env(BRAINPY_POISSON_IMPL="garbage", BRAINPY_POISSON_NUM_THREADS="x2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["impl"]["default"] == "invalid"
    assert report["switches"]["BRAINPY_POISSON_IMPL"]["raw"] == "garbage"
    assert report["switches"]["BRAINPY_POISSON_NUM_THREADS"]["shown"] == "no cap"
    assert any("BRAINPY_POISSON_IMPL='garbage'" in p for p in report["problems"])
    assert any("BRAINPY_POISSON_NUM_THREADS='x2'" in p for p in report["problems"])

    text = subprocess.run(
        [sys.executable, "-m", "brainpy_poisson_plugin", "doctor"],
        env=_scrubbed_env(BRAINPY_POISSON_IMPL="garbage"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert text.returncode == 1 and "Traceback" not in text.stderr, text.stderr
    assert "PROBLEM: BRAINPY_POISSON_IMPL='garbage'" in text.stdout


# --------------------------------------------------------------------------------------
# BRAINPY_POISSON_NATIVE (issue 12 items 9, 10)
# --------------------------------------------------------------------------------------

_NATIVE_OFF_WORDS = """
    import json, os, warnings
    from brainpy_poisson_plugin.ops import native
    out = {}
    for word in ("0", "off", "false", "no", "OFF", " No "):
        os.environ["BRAINPY_POISSON_NATIVE"] = word
        native._status = None  # a fresh decision for each word (load() caches per process)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out[word] = dict(cpu=native.available("cpu"), error=native.load_error(),
                             warnings=[str(w.message) for w in caught])
    print(json.dumps(out))
"""


def test_every_off_word_disables_the_kernel_without_a_warning():
    out = _last_json(_run(_NATIVE_OFF_WORDS))
    for word, res in out.items():
        assert res["cpu"] is False, word
        assert res["error"] == f"disabled by BRAINPY_POISSON_NATIVE={word.strip()}", res
        assert res["warnings"] == [], (word, res)


_TWO_CALLS = """
    import json
    import jax, jax.numpy as jnp
    from brainpy_poisson_plugin.ops import native
    if {missing}:
        native._NATIVE_DIR = native._NATIVE_DIR / "no-such-dir"  # the library is not there
    from brainpy_poisson_plugin import poisson_add
    results = []
    for i in range(2):
        try:
            results.append(float(poisson_add(jnp.zeros(8), jax.random.PRNGKey(0), 100, 0.5, 1.0).sum()))
        except Exception as exc:
            results.append(type(exc).__name__)
    print(json.dumps(dict(results=results, error=native.load_error())))
"""


@pytest.mark.parametrize("how", ["missing", "disabled"])
def test_fallback_is_the_same_on_every_call_under_warnings_as_errors(how):
    env = {"BRAINPY_POISSON_NATIVE": "0"} if how == "disabled" else {}
    proc = _run(_TWO_CALLS.format(missing=how == "missing"), "-W", "error::RuntimeWarning", **env)
    out = _last_json(proc)
    first, second = out["results"]
    assert isinstance(first, float) and first == second, out  # both calls succeed, same numbers
    if how == "missing":
        assert "not built" in out["error"]
        assert proc.stderr.count("fused native kernel is unavailable") == 1  # reported once, not raised
    else:
        assert "fused native kernel is unavailable" not in proc.stderr  # deliberate: silent


def test_bad_num_threads_warns_when_the_library_loads():
    code = """
        import json, warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from brainpy_poisson_plugin.ops import native
            native.load()
        print(json.dumps([str(w.message) for w in caught if "NUM_THREADS" in str(w.message)]))
    """
    proc = _run(code, BRAINPY_POISSON_NUM_THREADS="lots")
    assert proc.returncode == 0, proc.stderr
    messages = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(messages) == 1 and "BRAINPY_POISSON_NUM_THREADS='lots'" in messages[0]
