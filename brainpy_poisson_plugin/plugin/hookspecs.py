"""Hook specifications for BrainPy plugins (pluggy project name ``"brainpy"``).

A BrainPy plugin is any installed distribution that declares an entry point in the
``brainpy.plugins`` group, for example in its ``pyproject.toml``::

    [project.entry-points."brainpy.plugins"]
    myplugin = "my_package.brainpy_hooks"

The entry point names a module (or any object) whose functions are marked with
:data:`hookimpl` and named like the hook specifications below::

    from brainpy_poisson_plugin.plugin.hookspecs import hookimpl

    @hookimpl
    def brainpy_plugin_info():
        return {"name": "my-plugin", "version": "1.0", "supported_host": ">=2.6,<2.9"}

    @hookimpl
    def brainpy_component_overrides(host_version):
        from my_package import FastThing
        return {"brainpy.dyn.SomeThing": FastThing}

(``pluggy.HookimplMarker("brainpy")`` works just as well; the project name is what
matters.)

Versioning
----------
:data:`HOOKSPEC_API_VERSION` is the version of this set of specifications. It only ever
grows, and only by *adding* hooks or *adding* arguments to existing hooks: pluggy passes a
hook implementation only the arguments it names, so an implementation written against an
older version keeps working. A plugin written against a newer version that implements a
hook an older loader does not know should mark that implementation
``@hookimpl(optionalhook=True)``; the loader then ignores it instead of rejecting the
plugin. A plugin that *requires* a newer API declares ``api_version`` in its
:func:`brainpy_plugin_info`; an older loader skips it with a warning.

Calling convention
------------------
The specifications below document their arguments and results in pytest's field style
(``:param:``, ``:returns:``); the loader checks what the hooks return
(:func:`brainpy_poisson_plugin.plugin.manager.plugin_info_from_hook_result`). Each hook
is called once per plugin in isolation (a plugin whose hook raises is reported in a
:class:`~brainpy_poisson_plugin.plugin.BrainPyPluginWarning` naming its entry point and
skipped; the other plugins are unaffected). Hooks are called after ``brainpy`` has
finished importing, so implementations may import BrainPy and JAX freely; the modules that
the entry points name should still import lazily what they can.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pluggy

__all__ = [
    "PROJECT_NAME",
    "ENTRY_POINT_GROUP",
    "HOOKSPEC_API_VERSION",
    "hookspec",
    "hookimpl",
    "PluginInfo",
    "brainpy_plugin_info",
    "brainpy_component_overrides",
]

#: The pluggy project name shared by the loader, the specifications and the plugins.
PROJECT_NAME = "brainpy"

#: The entry-point group the loader reads.
ENTRY_POINT_GROUP = "brainpy.plugins"

#: Version of the hook specifications in this module (see "Versioning" above).
#: 1: ``brainpy_plugin_info``, ``brainpy_component_overrides``.
HOOKSPEC_API_VERSION = 1

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """What a plugin says about itself (the normalised result of :func:`brainpy_plugin_info`).

    Attributes:
        name: distribution or display name of the plugin, e.g. ``"brainpy-poisson-plugin"``.
        version: the plugin's own version string.
        supported_host: the BrainPy versions the plugin is tested on, as a
            :class:`packaging.specifiers.SpecifierSet` string (e.g. ``">=2.6,<2.9"``);
            ``""`` means "any".
        api_version: the :data:`HOOKSPEC_API_VERSION` the plugin was written against.
        description: one line for ``brainpy-poisson doctor``.
    """

    name: str
    version: str
    supported_host: str = ""
    api_version: int = 1
    description: str = ""


@hookspec(firstresult=False)
def brainpy_plugin_info() -> PluginInfo | Mapping[str, Any]:
    """Describe the plugin: its name, version and the BrainPy versions it is tested on.

    Called once per plugin, right after the loader registered it (when ``brainpy``
    finishes importing, or when ``brainpy-poisson doctor`` inspects the plugins), before
    any other hook. Every plugin must implement it.

    :returns:
        A :class:`PluginInfo`, or a mapping with the same keys: ``name`` and ``version``
        (required, non-empty strings), ``supported_host`` (a ``packaging`` specifier string
        for the BrainPy versions the plugin is tested on; ``""`` for any), ``api_version``
        (the :data:`HOOKSPEC_API_VERSION` it needs, default 1) and ``description``. Keys
        this loader does not know are ignored.

    A plugin that does not implement this hook, returns something unusable, raises, or
    needs a newer ``api_version`` than the loader's is skipped with a
    :class:`~brainpy_poisson_plugin.plugin.BrainPyPluginWarning`.
    """


@hookspec(firstresult=False)
def brainpy_component_overrides(host_version: str) -> Mapping[str, Any] | None:
    """Offer replacements for BrainPy's public names.

    Called once per plugin, after ``brainpy`` has finished importing and after
    :func:`brainpy_plugin_info`; again whenever the loader is asked to re-apply the
    overrides.

    :param host_version:
        The BrainPy version found, as a string such as ``"2.8.2"``. A plugin that is not
        tested on this version should return ``None`` or ``{}`` (and may warn).

    :returns:
        ``None`` or a mapping from host dotted names to the replacement objects, e.g.
        ``{"brainpy.dyn.PoissonInput": MyPoissonInput}``. Each name must start with
        ``"brainpy."``; the part before the last dot must be an importable module.

    The loader rebinds names where BrainPy *re-exports* an object (``brainpy.dyn.X``); it
    refuses to rebind a name in the module that defines the current object, so the host's
    own definition stays reachable. A name that does not exist yet is created (and removed
    again when the overrides are reverted). If two plugins offer the same name, the first
    one loaded (entry points are processed sorted by name) wins and the other is reported.
    A hook that raises, or returns something that is not a mapping, removes only this
    plugin's contribution (with a warning naming its entry point).
    """
