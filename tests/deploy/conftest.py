"""Fixtures for the deploy tests: system tools, and a fake system for install.sh.

install.sh and remote-install.sh run for real against a scratch root; the
commands that would touch the real machine (apt-get, useradd, systemctl,
python3 -m venv, pip, ssh, scp) are PATH shims that append their argv to a
log and keep a tiny fake user/group database, so the tests can assert both
the files written and the commands issued.
"""

import os
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "happyhouse.service"


def need_tool(name: str) -> str:
    """Path of a system tool; skip without it, but fail under CI=true (CI installs it)."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (apt-get install {'systemd' if name.startswith('systemd') else name})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true: .ci/run installs it, so this must not be skipped")
        pytest.skip(reason)
    return path


def _write_exe(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


# Every shim logs "name arg1 arg2 ..." (one line per call) to $SHIM_LOG.
_LOG = 'printf "%s" "$(basename "$0")" >>"$SHIM_LOG"; printf " %s" "$@" >>"$SHIM_LOG"; echo >>"$SHIM_LOG"\n'

_SHIMS = {
    "apt-get": "exit 0\n",
    # python3-lgpio is packaged on Raspberry Pi OS: pretend so here.
    "apt-cache": 'case "$*" in *python3-lgpio*) echo "  Candidate: 0.2.2-1~rpt1";; esac\n',
    "getent": 'grep -q "^$2\\$" "$SHIM_DB/$1" 2>/dev/null\n',
    "groupadd": 'echo "${@: -1}" >>"$SHIM_DB/group"\n',
    "useradd": 'echo "${@: -1}" >>"$SHIM_DB/passwd"; echo "${@: -1}" >>"$SHIM_DB/group"\n',
    "usermod": "exit 0\n",
    "userdel": 'sed -i "/^$1\\$/d" "$SHIM_DB/passwd"\n',
    "systemctl": "exit 0\n",
    "udevadm": "exit 0\n",
    "chown": "exit 0\n",
    "ssh": 'case "$*" in *mktemp*) echo /tmp/happyhouse-install.AbC123;; esac\n',
    "scp": 'for a in "$@"; do case "$a" in */.) ls -A "$a" >>"$SHIM_DB/scp-files";; esac; done\n',
    # python3 -m venv DIR: a fake venv whose pip logs and, when the wheel is
    # installed, provides a happyhouse-daemon that logs and exits $DAEMON_RC.
    "python3": r'''
        if [ "$1 $2" != "-m venv" ]; then echo "python3 shim: unexpected $*" >&2; exit 99; fi
        venv="${@: -1}"; mkdir -p "$venv/bin"
        cat >"$venv/bin/python" <<'EOF'
        #!/usr/bin/env bash
        case "$*" in *version_info*) echo "${FAKE_PYTHON:-3.11}";; esac
        exit 0
        EOF
        cat >"$venv/bin/pip" <<'EOF'
        #!/usr/bin/env bash
        printf "pip" >>"$SHIM_LOG"; printf " %s" "$@" >>"$SHIM_LOG"; echo >>"$SHIM_LOG"
        case "$*" in *--force-reinstall*)
          printf '#!/usr/bin/env bash\nprintf "happyhouse-daemon" >>"$SHIM_LOG"; printf " %%s" "$@" >>"$SHIM_LOG"; echo >>"$SHIM_LOG"\ncase "$*" in *--print-config*) [ "${DAEMON_RC:-0}" != 0 ] || cat "${@: -1}" 2>/dev/null; exit "${DAEMON_RC:-0}";; *--help*) [ -n "$OLD_DAEMON" ] || echo "  --verify-model  load the model bundle"; exit 0;; *--verify-model*) exit "${VERIFY_RC:-0}";; esac\nexit "${DAEMON_RC:-0}"\n' >"$(dirname "$0")/happyhouse-daemon"
          chmod +x "$(dirname "$0")/happyhouse-daemon";;
        esac
        EOF
        chmod +x "$venv/bin/python" "$venv/bin/pip"
    ''',
}


class FakeSystem:
    """A scratch root, a staged deploy folder and PATH shims for install.sh."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.root.mkdir()
        self.bin = base / "bin"
        self.bin.mkdir()
        self.db = base / "db"
        self.db.mkdir()
        (self.db / "group").write_text("video\n")  # Raspberry Pi OS has video; gpio varies
        (self.db / "passwd").write_text("")
        self.log_path = base / "calls.log"
        self.log_path.write_text("")
        for name, body in _SHIMS.items():
            _write_exe(self.bin / name, "#!/usr/bin/env bash\n" + _LOG + textwrap.dedent(body))
        # The staged folder remote-install.sh copies to the Pi: install.sh,
        # the unit, an example config (the daemon's own example) and docs.
        self.stage = base / "stage"
        (self.stage / "docs").mkdir(parents=True)
        shutil.copy2(DEPLOY / "install.sh", self.stage / "install.sh")
        shutil.copy2(UNIT, self.stage / "happyhouse.service")
        from happyhouse.daemon.config import example_ini

        self.example = self.stage / "happyhouse.conf"
        self.example.write_text(example_ini())
        (self.stage / "docs" / "operations.md").write_text("# Operations\n")
        self.wheel = base / "happyhouse-0.1.0-py3-none-any.whl"
        self.wheel.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip: the shim pip never opens it

    def env(self, **extra: str) -> dict:
        env = dict(os.environ)
        env.update(PATH=f"{self.bin}:{env['PATH']}", SHIM_LOG=str(self.log_path),
                   SHIM_DB=str(self.db), **extra)
        return env

    def install(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        cmd = ["bash", str(self.stage / "install.sh"), "--root", str(self.root),
               "--wheel", str(self.wheel), *args]
        proc = subprocess.run(cmd, env=self.env(**env), capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"install.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def calls(self) -> list:
        return [line.split(" ") for line in self.log_path.read_text().splitlines()]

    def commands(self, name: str) -> list:
        return [" ".join(c[1:]) for c in self.calls() if c[0] == name]

    def clear_log(self) -> None:
        self.log_path.write_text("")

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def tree(self) -> dict:
        """Every file under the root: relative path -> (mode, bytes)."""
        return {str(p.relative_to(self.root)): (stat.S_IMODE(p.stat().st_mode), p.read_bytes())
                for p in sorted(self.root.rglob("*")) if p.is_file()}


@pytest.fixture
def fake_system(tmp_path) -> FakeSystem:
    return FakeSystem(tmp_path)


@pytest.fixture(scope="session")
def systemd_analyze() -> str:
    path = need_tool("systemd-analyze")
    first = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.split()
    version = int(first[1]) if len(first) > 1 and first[1].isdigit() else 0
    if version < 250:  # "security --offline=yes" arrived in systemd 250
        reason = f"systemd-analyze {version} is older than 250 (no --offline)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shellcheck() -> str:
    return need_tool("shellcheck")
