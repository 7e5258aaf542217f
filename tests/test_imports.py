"""The Pi side must never pull in TensorFlow or Keras."""

import json
import pkgutil
import subprocess
import sys

import happyhouse.daemon


def daemon_modules():
    return sorted(f"happyhouse.daemon.{m.name}" for m in pkgutil.iter_modules(happyhouse.daemon.__path__))


def test_daemon_has_modules():
    mods = daemon_modules()
    for expected in ("cli", "config", "runtime", "bundle", "preprocess", "datasets", "errors"):
        assert f"happyhouse.daemon.{expected}" in mods


def test_importing_every_daemon_module_does_not_import_tensorflow():
    code = (
        "import importlib, json, sys\n"
        f"mods = {daemon_modules()!r}\n"
        "for m in mods: importlib.import_module(m)\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_console_script_entry_points_are_main_functions():
    import importlib
    import inspect
    from importlib.metadata import entry_points

    eps = [ep for ep in entry_points(group="console_scripts") if ep.name.startswith("happyhouse-")]
    names = {ep.name for ep in eps}
    assert {"happyhouse-daemon", "happyhouse-eval", "happyhouse-train", "happyhouse-convert"} <= names
    for ep in eps:
        module, _, attr = ep.value.partition(":")
        func = getattr(importlib.import_module(module), attr)
        sig = inspect.signature(func)
        assert list(sig.parameters) == ["argv"] and sig.parameters["argv"].default is None
