"""deploy/remote-install.sh: argument handling, dry run, and a full run with a
fake transport: ssh runs the remote command locally, scp copies locally, so
the staged install.sh really installs into a scratch root."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOST = "pi@door.local"


def _exe(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)


@pytest.fixture
def desk(fake_system, tmp_path):
    """A desktop checkout (copied deploy/ + docs/) and a fake Pi behind ssh."""
    fs = fake_system
    repo = tmp_path / "checkout"
    (repo / "deploy").mkdir(parents=True)
    (repo / "docs").mkdir()
    for name in ("remote-install.sh", "install.sh", "happyhouse.service"):
        shutil.copy2(REPO / "deploy" / name, repo / "deploy" / name)
    shutil.copy2(fs.example, repo / "deploy" / "happyhouse.conf")
    (repo / "docs" / "wiring.md").write_text("# Wiring\n")
    pi_tmp = tmp_path / "pi-tmp"
    pi_tmp.mkdir()
    log = '{ printf "%s" "$(basename "$0")"; printf " %s" "$@"; echo; } >>"$SHIM_LOG"\n'
    _exe(fs.bin / "ssh", log + f'case "$*" in *mktemp*) mkdir -p {pi_tmp}/stage && echo {pi_tmp}/stage; exit 0;; esac\n'
                               'exec bash -c "${@: -1}"\n')
    _exe(fs.bin / "scp", log + 'src="${@: -2:1}"; dst="${@: -1}"; cp -R "$src" "${dst#*:}"\n')
    _exe(fs.bin / "sudo", log + 'exec "$@"\n')
    # "$PYTHON -m pip wheel ... --wheel-dir DIR SRC" writes a wheel into DIR.
    _exe(fs.bin / "fakepython", log + 'while [ $# -gt 1 ]; do [ "$1" = --wheel-dir ] && out=$2; shift; done\n'
                                      ': >"$out/happyhouse-0.1.0-py3-none-any.whl"\n')
    return fs, repo, pi_tmp


def remote(fs, repo, *args, **env):
    return subprocess.run(["bash", str(repo / "deploy" / "remote-install.sh"), *args],
                          env=fs.env(PYTHON="fakepython", **env), capture_output=True, text=True,
                          timeout=60)


def test_one_command_builds_copies_and_installs(desk):
    fs, repo, pi_tmp = desk
    proc = remote(fs, repo, HOST, "--", "--root", str(fs.root), "--no-apt")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    build = fs.commands("fakepython")
    assert len(build) == 1 and build[0].startswith("-m pip wheel") and "--no-deps" in build[0]
    ssh = fs.commands("ssh")
    assert ssh[0] == f"{HOST} mktemp -d /tmp/happyhouse-install.XXXXXX"
    assert ssh[1].startswith(f"-t {HOST} ")
    assert fs.commands("sudo")[0].startswith("bash ")
    # install.sh ran on "the Pi" from the staged folder and used the built wheel.
    assert any("happyhouse-0.1.0-py3-none-any.whl" in c for c in fs.commands("pip"))
    assert fs.path("/etc/systemd/system/happyhouse.service").is_file()
    assert fs.path("/opt/happyhouse/docs/wiring.md").is_file()
    assert fs.commands("systemctl")[-1] == "restart happyhouse"
    assert not (pi_tmp / "stage").exists()  # the remote staging folder is cleaned up


def test_remote_failure_is_reported(desk):
    fs, repo, pi_tmp = desk
    proc = remote(fs, repo, HOST, "--", "--root", str(fs.root), "--no-apt", DAEMON_RC="2")
    assert proc.returncode == 2
    assert not (pi_tmp / "stage").exists()


def test_prebuilt_wheel_and_bundle(desk, tmp_path):
    fs, repo, _ = desk
    bundle = tmp_path / "mybundle"
    bundle.mkdir()
    (bundle / "model.tflite").write_bytes(b"x")
    (bundle / "model.json").write_text("{}")
    proc = remote(fs, repo, "--wheel", str(fs.wheel), "--bundle", str(bundle), HOST,
                  "--", "--root", str(fs.root), "--no-apt")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fs.commands("fakepython") == []  # nothing built
    assert fs.path("/etc/happyhouse/bundle/model.tflite").read_bytes() == b"x"


def test_dry_run_touches_nothing(desk):
    fs, repo, _ = desk
    proc = remote(fs, repo, "--dry-run", HOST)
    assert proc.returncode == 0, proc.stderr
    assert fs.calls() == []
    assert f"+ ssh -t {HOST}" in proc.stdout and "+ scp -q -r" in proc.stdout
    assert "+ fakepython -m pip wheel" in proc.stdout


@pytest.mark.parametrize("args, message", [
    ([], "no host given"),
    ([HOST, "pi@other.local"], "one host only"),
    (["pi@door.local:/tmp"], "must be [user@]host"),
    (["--bundle", "/nonexistent", HOST], "has no model.tflite"),
    (["--wheel", "/nonexistent.whl", HOST], "does not exist"),
    (["--bogus", HOST], "unknown option"),
    (["--bundle", "--dry-run", HOST], "--bundle needs a folder"),  # was "bundle --dry-run has no ..."
    (["--ssh-option", "--wheel", "x.whl", HOST], "--ssh-option needs a value"),
])
def test_bad_arguments(desk, args, message):
    fs, repo, _ = desk
    proc = remote(fs, repo, *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert fs.calls() == []


def test_help(desk):
    fs, repo, _ = desk
    proc = remote(fs, repo, "--help")
    assert proc.returncode == 0 and "user@" in proc.stdout
