"""Plugins from other packages: entry points in the registry's group register on first look-up."""

from __future__ import annotations

import sys
import textwrap

import pytest

from langshift.errors import LangshiftError
from langshift.registry import Registry


def _install_plugin(site, group: str, entries: dict[str, str], module: str, code: str) -> None:
    """A minimal installed distribution (dist-info with entry_points.txt) and its module on sys.path."""
    info = site / "langshift_test_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: langshift-test-plugin\nVersion: 0.1\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(code))


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("lsplug_")]:
        del sys.modules[name]


def test_entry_points_register_objects_and_modules(site):
    reg = Registry("test widget")
    assert reg.group == "langshift.test_widgets"
    _install_plugin(site, reg.group, {"double": "lsplug_a:double", "decorated": "lsplug_a", "broken": "lsplug_missing"},
                    "lsplug_a", """
        from langshift.registry import ALL

        def double(x):
            return 2 * x

        ALL["test widget"].register("triple")(lambda x: 3 * x)
    """)
    assert reg.get("double")(4) == 8      # an object: registered under the entry point's name
    assert reg.get("triple")(4) == 12     # a module: imported, its own registration counts
    assert "broken" not in reg.names()    # a plugin that fails to import is skipped (and logged)
    with pytest.raises(LangshiftError, match="Did you mean 'double'"):
        reg.get("doubel")


def test_a_real_registry_finds_an_outside_init_method(site):
    from langshift.transfer.methods.base import INIT_METHODS

    _install_plugin(site, "langshift.init_methods", {"lsplug-zero": "lsplug_b:zero"}, "lsplug_b", """
        def zero(problem, params):
            raise RuntimeError("not called here")
    """)
    INIT_METHODS._loaded = False  # look again, as a fresh process would
    try:
        assert "lsplug-zero" in INIT_METHODS.names() and "focus" in INIT_METHODS.names()
    finally:
        INIT_METHODS._items.pop("lsplug-zero", None)
