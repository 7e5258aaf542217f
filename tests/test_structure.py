"""The daemon package's shape: every module imports alone, no import cycles, and no
module reaches into another module's private names."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

DAEMON = Path(__file__).resolve().parents[1] / "daemon"
PACKAGE = "happyhouse.daemon"


def modules():
    """{dotted name: path} of every module in the daemon package (subpackages included)."""
    out = {}
    for path in sorted(DAEMON.rglob("*.py")):
        parts = path.relative_to(DAEMON).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join((PACKAGE,) + parts)] = path
    return out


def _package_of(name, path):
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


def imports(name, path):
    """(imported module, names imported from it) for every package-internal import,
    at the top or inside functions."""
    known = modules()
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(name, path)
                for _ in range(node.level - 1):
                    base = base.rsplit(".", 1)[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not target.startswith(PACKAGE):
                continue
            for alias in node.names:  # "from . import detectors" imports a module
                sub = f"{target}.{alias.name}"
                if sub in known:
                    found.append((sub, []))
                elif target in known:
                    found.append((target, [alias.name]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name in known]
    return found


def test_no_import_cycles_in_the_daemon():
    graph = {name: {t for t, _ in imports(name, path) if t != name}
             for name, path in modules().items()}
    # a package imports its own modules (the detector table): that edge is not a cycle
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_imports_another_modules_private_names():
    reached = []
    for name, path in modules().items():
        for target, names in imports(name, path):
            reached += [f"{name} imports {target}.{n}" for n in names
                        if n.startswith("_") and not n.startswith("__")]
        tree = ast.parse(path.read_text())
        aliases = {a.asname or a.name.split(".")[-1] for n in ast.walk(tree)
                   if isinstance(n, ast.ImportFrom) and n.level for a in n.names}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                reached.append(f"{name} uses {node.value.id}.{node.attr}")
    assert reached == []


@pytest.mark.slow
def test_every_daemon_module_imports_alone():
    names = sorted(modules())
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    import subprocess\n"
            "    r = subprocess.run([sys.executable, '-c', f'import {name}'], capture_output=True,"
            " text=True)\n"
            "    if r.returncode: print(name, r.stderr.strip().splitlines()[-1])\n")
    out = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0 and out.stdout == "", out.stdout + out.stderr
