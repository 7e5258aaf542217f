"""deploy/install.sh against a scratch root with the system commands shimmed."""

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CONF = "/etc/happyhouse/happyhouse.conf"
UNIT = "/etc/systemd/system/happyhouse.service"
VENV = "/opt/happyhouse/venv"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_fresh_install_lands_every_piece(fake_system):
    fs = fake_system
    fs.install()
    assert fs.path(UNIT).read_text() == (REPO / "deploy" / "happyhouse.service").read_text()
    assert fs.path(CONF).read_text() == fs.example.read_text()
    assert mode(fs.path(CONF)) == 0o640  # may hold an rtsp:// password
    assert mode(fs.path("/var/lib/happyhouse")) == 0o700
    assert fs.path(f"{VENV}/bin/happyhouse-daemon").exists()
    assert fs.path("/opt/happyhouse/docs/operations.md").exists()

    apt = fs.commands("apt-get")
    assert len(apt) == 1 and apt[0].startswith("install -y")
    assert {"python3-venv", "python3-systemd", "python3-lgpio"} <= set(apt[0].split())
    assert "python3-opencv" not in apt[0].split()  # pip OpenCV is the default
    assert fs.commands("groupadd") == ["--system gpio"]  # video existed already
    useradd = fs.commands("useradd")
    assert len(useradd) == 1 and useradd[0].endswith(" happyhouse")
    assert "--system" in useradd[0] and "--groups gpio,video" in useradd[0]
    assert fs.commands("python3") == [f"-m venv --system-site-packages {fs.path(VENV)}"]
    pip = fs.commands("pip")
    assert any(f"happyhouse[pi] @ file://{fs.wheel}" in c for c in pip)
    assert pip[-1].endswith(f"--force-reinstall --no-deps {fs.wheel}")
    # Config and its model validated by the installed daemon before the service starts.
    assert fs.commands("happyhouse-daemon") == [
        f"--print-config --config {fs.path(CONF)}",
        f"--verify-model --config {fs.path(CONF)} --log-level ERROR"]
    systemctl = fs.commands("systemctl")
    assert systemctl == ["daemon-reload", "enable happyhouse", "restart happyhouse"]
    # The gpio group was created here, so the udev rule that gives it the chips too.
    assert "gpiochip" in fs.path("/etc/udev/rules.d/60-happyhouse-gpio.rules").read_text()


def test_second_run_is_idempotent(fake_system):
    fs = fake_system
    fs.install()
    before = fs.tree()
    fs.clear_log()
    fs.install()
    assert fs.tree() == before
    for name in ("groupadd", "useradd", "python3", "udevadm"):
        assert fs.commands(name) == [], name
    assert not fs.path(CONF + ".new").exists()


def test_edited_config_is_never_overwritten(fake_system):
    fs = fake_system
    fs.install()
    conf = fs.path(CONF)
    edited = conf.read_text().replace("#pin = GPIO17", "pin = GPIO27")
    assert edited != conf.read_text()
    conf.write_text(edited)
    # An upgrade ships a changed example.
    fs.example.write_text(fs.example.read_text() + "# new in this release\n")
    proc = fs.install()
    assert conf.read_text() == edited
    assert fs.path(CONF + ".new").read_text() == fs.example.read_text()
    assert "keeping your edited" in proc.stdout


def test_unedited_config_follows_the_example(fake_system):
    fs = fake_system
    fs.install()
    fs.example.write_text(fs.example.read_text() + "# new in this release\n")
    fs.install()
    assert fs.path(CONF).read_text() == fs.example.read_text()
    assert not fs.path(CONF + ".new").exists()


def test_bundle_is_installed_and_a_new_config_points_at_it(fake_system, tmp_path):
    fs = fake_system
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model.tflite").write_bytes(b"TFL3-not-really")
    (bundle / "model.json").write_text("{}")
    fs.install("--bundle", str(bundle))
    dest = fs.path("/etc/happyhouse/bundle")
    assert (dest / "model.tflite").read_bytes() == b"TFL3-not-really"
    assert "\nbundle = /etc/happyhouse/bundle\n" in fs.path(CONF).read_text()
    # A new model replaces the old one whole.
    (bundle / "model.tflite").write_bytes(b"TFL3-newer")
    fs.install("--bundle", str(bundle))
    assert (dest / "model.tflite").read_bytes() == b"TFL3-newer"
    assert not fs.path("/etc/happyhouse/bundle.new").exists()
    # issue 18: the bundle it replaced is kept for happyhouse-daemon --rollback-model
    previous = fs.path("/etc/happyhouse/bundle.previous")
    assert (previous / "model.tflite").read_bytes() == b"TFL3-not-really"


def test_an_install_after_a_swap_cut_short_keeps_the_bundle_the_door_served(fake_system,
                                                                          tmp_path):
    """A signal between the swap's two renames left bundle.previous and no bundle; the next
    install then deleted bundle.previous, the bundle the door served, and a rollback had
    nothing to restore."""
    fs = fake_system
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model.json").write_text("{}")
    for content in (b"TFL3-A", b"TFL3-B"):
        (bundle / "model.tflite").write_bytes(content)
        fs.install("--bundle", str(bundle))
    dest = fs.path("/etc/happyhouse/bundle")
    # as the cut swap left it: B moved aside, C not yet moved in
    shutil.rmtree(fs.path("/etc/happyhouse/bundle.previous"))
    dest.rename(fs.path("/etc/happyhouse/bundle.previous"))
    (bundle / "model.tflite").write_bytes(b"TFL3-C")
    shutil.copytree(bundle, fs.path("/etc/happyhouse/bundle.new"))
    fs.install("--bundle", str(bundle))
    assert (dest / "model.tflite").read_bytes() == b"TFL3-C"
    previous = fs.path("/etc/happyhouse/bundle.previous")
    assert (previous / "model.tflite").read_bytes() == b"TFL3-B"


def test_a_signal_between_the_swap_s_renames_leaves_the_new_bundle_whole(fake_system,
                                                                         tmp_path):
    """A SIGTERM (or a dropped ssh session's SIGHUP) between the two renames ended the
    install with the old bundle moved aside and none at /etc/happyhouse/bundle."""
    fs = fake_system
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model.json").write_text("{}")
    (bundle / "model.tflite").write_bytes(b"TFL3-A")
    fs.install("--bundle", str(bundle))
    real_mv = shutil.which("mv")
    shim = fs.bin / "mv"  # the first rename of the swap: SIGTERM to the installer meanwhile
    shim.write_text(f'#!/bin/bash\ncase "$*" in *bundle.previous*) kill -TERM $PPID;; esac\n'
                    f'exec {real_mv} "$@"\n')
    shim.chmod(0o755)
    (bundle / "model.tflite").write_bytes(b"TFL3-B")
    proc = fs.install("--bundle", str(bundle), check=False)
    assert proc.returncode != 0 and "interrupted (SIGTERM) just after the bundle was swapped in" \
        in proc.stderr, proc.stderr  # answered after the swap, not lost
    assert (fs.path("/etc/happyhouse/bundle") / "model.tflite").read_bytes() == b"TFL3-B"
    previous = fs.path("/etc/happyhouse/bundle.previous")
    assert (previous / "model.tflite").read_bytes() == b"TFL3-A"


def test_bundle_only_swaps_the_bundle_and_reloads(fake_system, tmp_path):
    """Issue 18: deploying an adapted bundle reloads (SIGHUP) instead of restarting, so a
    bundle that fails its self-test is refused while the old model keeps serving."""
    fs = fake_system
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model.tflite").write_bytes(b"TFL3-general")
    (bundle / "model.json").write_text("{}")
    proc = fs.install("--bundle-only", "--bundle", str(bundle), check=False)
    assert proc.returncode == 2 and "not installed" in proc.stderr  # nothing to reload yet
    fs.install("--bundle", str(bundle))
    before = {k: v for k, v in fs.tree().items() if "etc/happyhouse/bundle" not in str(k)}
    fs.clear_log()
    (bundle / "model.tflite").write_bytes(b"TFL3-adapted")
    fs.install("--bundle-only", "--bundle", str(bundle))
    assert fs.commands("systemctl") == ["try-reload-or-restart happyhouse"]
    assert fs.commands("pip") == [] and fs.commands("apt-get") == []
    assert (fs.path("/etc/happyhouse/bundle") / "model.tflite").read_bytes() == b"TFL3-adapted"
    assert (fs.path("/etc/happyhouse/bundle.previous") / "model.tflite").read_bytes() == b"TFL3-general"
    after = {k: v for k, v in fs.tree().items() if "etc/happyhouse/bundle" not in str(k)}
    assert after == before  # nothing but the bundle changed
    assert fs.install("--bundle-only", check=False).returncode == 2


def _bundle(tmp_path, content=b"TFL3-general"):
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "model.tflite").write_bytes(content)
    (bundle / "model.json").write_text("{}")
    return bundle


def test_a_bundle_that_does_not_load_here_is_not_installed(fake_system, tmp_path):
    """Only the two file names were checked: a corrupt bundle replaced the good one and
    showed at the next restart, a door locked and out of service."""
    fs = fake_system
    bundle = _bundle(tmp_path)
    fs.install("--bundle", str(bundle))
    assert any(c.startswith("--verify-model --model ") and c.split()[2].endswith("/etc/happyhouse/bundle.new")
               for c in fs.commands("happyhouse-daemon")), fs.commands("happyhouse-daemon")
    fs.clear_log()
    (bundle / "model.tflite").write_bytes(b"TFL3-corrupt")
    proc = fs.install("--bundle-only", "--bundle", str(bundle), check=False, VERIFY_RC="2")
    assert proc.returncode == 2 and "does not load here" in proc.stderr
    assert (fs.path("/etc/happyhouse/bundle") / "model.tflite").read_bytes() == b"TFL3-general"
    assert not fs.path("/etc/happyhouse/bundle.new").exists()
    assert not fs.path("/etc/happyhouse/bundle.previous").exists()
    assert fs.commands("systemctl") == []  # nothing to reload: nothing changed


def test_a_plain_upgrade_keeps_the_config_pointing_at_the_installed_bundle(fake_system, tmp_path):
    """The unedited config was replaced by the example without its bundle line: the door
    went back to the shipped model, silently, with the house's bundle still on disk."""
    fs = fake_system
    fs.install("--bundle", str(_bundle(tmp_path)))
    fs.install()
    assert "\nbundle = /etc/happyhouse/bundle\n" in fs.path(CONF).read_text()


def test_a_plain_upgrade_does_not_turn_on_a_bundle_the_technician_never_turned_on(fake_system, tmp_path):
    """--bundle-only leaves the config alone ("set bundle = ... to use it"); the next plain
    upgrade then wrote "bundle = /etc/happyhouse/bundle" into the unedited config, and the
    door served the trial bundle after its restart without a word."""
    fs = fake_system
    fs.install()
    fs.install("--bundle-only", "--bundle", str(_bundle(tmp_path)))
    assert "\nbundle = /etc/happyhouse/bundle\n" not in fs.path(CONF).read_text()
    fs.install()
    assert "\nbundle = /etc/happyhouse/bundle\n" not in fs.path(CONF).read_text()


def test_the_bundle_is_verified_with_the_doors_config_and_a_rejected_config_is_named(fake_system, tmp_path):
    """--verify-model ran without --config, so it read the host's /etc (not the one under
    --root), and a config the new daemon rejects was reported as "the bundle does not load
    here; nothing was installed" after the new wheel was installed."""
    fs = fake_system
    bundle = _bundle(tmp_path)
    fs.install("--bundle", str(bundle))
    fs.clear_log()
    (bundle / "model.tflite").write_bytes(b"TFL3-adapted")
    fs.install("--bundle-only", "--bundle", str(bundle))
    verify = [c for c in fs.commands("happyhouse-daemon") if c.startswith("--verify-model")]
    assert verify and all(f"--config {fs.path(CONF)}" in c for c in verify), verify
    (bundle / "model.tflite").write_bytes(b"TFL3-again")
    proc = fs.install("--bundle-only", "--bundle", str(bundle), check=False, DAEMON_RC="2")
    assert proc.returncode == 2 and "is rejected by the daemon" in proc.stderr
    assert "does not load here" not in proc.stderr
    assert (fs.path("/etc/happyhouse/bundle") / "model.tflite").read_bytes() == b"TFL3-adapted"
    assert not fs.path("/etc/happyhouse/bundle.new").exists()


def test_an_upgrade_does_not_restart_into_a_bundle_this_release_will_not_arm(fake_system, tmp_path):
    """An upgrade probe: a bundle the old release's happyhouse-adapt made (a 16-face parity
    hold-out) was served by the old door and refused by the new one: install.sh said
    "started", and the service looped into start-limit-hit, the door out of service."""
    fs = fake_system
    fs.install("--bundle", str(_bundle(tmp_path)))
    fs.clear_log()
    proc = fs.install(check=False, VERIFY_RC="2")
    assert proc.returncode == 2
    assert "the door would not arm with the model bundle" in proc.stderr and "--rollback-model" in proc.stderr
    assert "restart happyhouse" not in fs.commands("systemctl")
    verify = [c for c in fs.commands("happyhouse-daemon") if c.startswith("--verify-model")]
    assert verify == [f"--verify-model --model {fs.path('/etc/happyhouse/bundle')} "
                      f"--config {fs.path(CONF)} --log-level ERROR"]


@pytest.mark.parametrize("path, words", [("/home/pi/bundle", "cannot keep it there"),
                                         ("/tmp/bundle", "cannot keep it there"),
                                         ("/var/lib/../../home/pi/b", "cannot keep it there"),
                                         ("//tmp/b", "cannot keep it there"),
                                         ("/run/happyhouse/b", "cannot keep it there"),
                                         ("bundles/mine", "not an absolute path")])
def test_an_upgrade_refuses_a_bundle_the_service_cannot_see(fake_system, path, words):
    """A review: the check ran as the service user from /, but the unit hides /home, /root
    and /tmp and runs in /run/happyhouse: such a bundle passed, then the restarted door
    could not find its model."""
    fs = fake_system
    fs.install()
    conf = fs.path(CONF)
    conf.write_text(conf.read_text().replace("[model]\n", f"[model]\nbundle = {path}\n", 1))
    fs.clear_log()
    proc = fs.install(check=False)
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr
    assert "restart happyhouse" not in fs.commands("systemctl")


def test_bundle_only_on_a_door_older_than_the_installer_says_so(fake_system, tmp_path):
    """An upgrade probe: the old daemon has no --verify-model: "unrecognized arguments",
    then "the bundle does not load here", blaming a bundle the old door serves."""
    fs = fake_system
    fs.install()
    bundle = _bundle(tmp_path)
    proc = fs.install("--bundle-only", "--bundle", str(bundle), check=False, OLD_DAEMON="1")
    assert proc.returncode == 2 and "predates this installer" in proc.stderr
    assert "does not load here" not in proc.stderr
    assert not fs.path("/etc/happyhouse/bundle").exists()


def test_a_wheel_in_a_folder_with_a_space(fake_system, tmp_path):
    """pip refused "happyhouse[pi] @ file:///a b/..." after apt, the user and the venv
    were set up."""
    fs = fake_system
    spaced = tmp_path / "my downloads"
    spaced.mkdir()
    wheel = spaced / fs.wheel.name
    wheel.write_bytes(fs.wheel.read_bytes())
    fs.wheel = wheel
    fs.install()
    req = [c for c in fs.commands("pip") if "[pi]" in c]
    assert req and "file://" in req[0] and "my%20downloads" in req[0] and "my downloads" not in req[0]


def test_bad_bundle_is_refused_before_anything_changes(fake_system, tmp_path):
    fs = fake_system
    proc = fs.install("--bundle", str(tmp_path), check=False)
    assert proc.returncode == 2
    assert "model.tflite" in proc.stderr
    assert fs.tree() == {} and fs.calls() == []


def test_config_the_daemon_rejects_stops_before_start(fake_system):
    fs = fake_system
    proc = fs.install(check=False, DAEMON_RC="2")
    assert proc.returncode == 2
    assert "rejected" in proc.stderr
    assert "restart happyhouse" not in fs.commands("systemctl")


@pytest.mark.parametrize("version", ["3.9", "3.10"])
def test_a_python_before_3_11_is_refused_before_anything_runs(fake_system, version):
    """A clock probe: before 3.11 a timed wait (the latch's relock timer) ran on the wall
    clock, which NTP steps at a Pi's boot; Raspberry Pi OS bullseye has 3.9."""
    fs = fake_system
    proc = fs.install(check=False, FAKE_PYTHON=version)
    assert proc.returncode == 2
    assert "needs Python 3.11 or later" in proc.stderr and f"is {version}" in proc.stderr
    assert not fs.commands("pip") and not fs.commands("systemctl")
    assert fs.install(FAKE_PYTHON="3.13").returncode == 0


def test_no_start(fake_system):
    fs = fake_system
    fs.install("--no-start")
    assert fs.commands("systemctl") == ["daemon-reload"]
    assert fs.path(UNIT).exists()


def test_system_opencv_keeps_pip_away_from_debian_opencv(fake_system):
    fs = fake_system
    fs.install("--opencv", "system")
    apt = fs.commands("apt-get")[0].split()
    assert {"python3-opencv", "python3-numpy", "gstreamer1.0-libcamera", "opencv-data"} <= set(apt)
    tokens = " ".join(fs.commands("pip")).split()
    assert not [t for t in tokens if "[pi]" in t or t.startswith("opencv")]
    assert any(t.startswith("ai-edge-litert") for t in tokens)


def test_uninstall_keeps_config_and_state(fake_system):
    fs = fake_system
    fs.install()
    fs.clear_log()
    fs.install("--uninstall")
    assert not fs.path(UNIT).exists()
    assert not fs.path("/opt/happyhouse").exists()
    assert fs.path(CONF).exists() and fs.path("/var/lib/happyhouse").is_dir()
    assert fs.commands("systemctl") == ["disable --now happyhouse", "daemon-reload"]
    assert fs.commands("userdel") == []


def test_purge_removes_everything(fake_system):
    fs = fake_system
    fs.install()
    fs.install("--uninstall", "--purge")
    assert fs.tree() == {}
    assert not fs.path("/etc/happyhouse").exists()
    assert fs.commands("userdel") == ["happyhouse"]


def test_dry_run_changes_nothing(fake_system):
    fs = fake_system
    proc = fs.install("--dry-run")
    assert fs.tree() == {}
    mutating = {"apt-get", "groupadd", "useradd", "usermod", "systemctl", "python3", "pip"}
    assert [c for c in fs.calls() if c[0] in mutating] == []
    assert "+ systemctl restart happyhouse" in proc.stdout
    assert "+ env DEBIAN_FRONTEND=noninteractive apt-get install" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--frobnicate"], "unknown option"),
    (["--purge"], "--purge only goes with --uninstall"),
    (["--opencv", "conda"], "--opencv must be pip or system"),
    (["--wheel", "/nonexistent/x.whl"], "does not exist"),
    # an option where the value belongs: it was taken for the bundle's folder
    (["--bundle", "--dry-run"], "--bundle needs a folder"),
    (["--opencv"], "--opencv needs pip or system"),
])
def test_bad_arguments(fake_system, args, message):
    proc = fake_system.install(*args, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr


def test_help():
    proc = subprocess.run(["bash", str(REPO / "deploy" / "install.sh"), "--help"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "--uninstall" in proc.stdout


def test_scripts_pass_shellcheck(shellcheck):
    scripts = [REPO / "deploy" / "install.sh", REPO / "deploy" / "remote-install.sh"]
    proc = subprocess.run([shellcheck, "--severity=style", *map(str, scripts)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shipped_example_config_is_valid():
    # install.sh copies deploy/happyhouse.conf; the daemon must accept it as is.
    from happyhouse.daemon.config import load_config

    path = REPO / "deploy" / "happyhouse.conf"
    assert path.is_file(), "deploy/happyhouse.conf (the commented example config) is missing"
    load_config(str(path), required=True)


def test_dry_run_says_would_not_did(fake_system):
    """Issue 16 item 22: --dry-run printed 'installed', 'started', 'purged' having changed nothing."""
    fs = fake_system
    said = fs.install("--dry-run").stdout
    assert "would install" in said and "would start" in said, said
    for claim in ("installed:", "started;", "removed;", "purged:"):
        assert claim not in said, (claim, said)
    fs.install()
    said = fs.install("--uninstall", "--purge", "--dry-run").stdout
    assert "would purge" in said and "purged:" not in said, said
    said = fs.install("--uninstall", "--dry-run").stdout
    assert "would remove" in said and "removed;" not in said, said
    assert fs.path(CONF).exists()  # nothing was removed


def test_root_says_that_system_commands_still_run():
    """Issue 16 item 22: --root only moves files; apt-get, useradd, systemctl still run."""
    proc = subprocess.run(["bash", str(REPO / "deploy" / "install.sh"), "--help"],
                          capture_output=True, text=True, timeout=30)
    root_help = proc.stdout.split("--root", 1)[1].split("--dry-run", 1)[0]
    for command in ("apt-get", "useradd", "systemctl"):
        assert command in root_help, root_help
    readme = (REPO / "deploy" / "README.md").read_text()
    testing = readme.split("**Testing**", 1)[1].split("\n\n", 1)[0]
    assert "apt-get" in testing and "systemctl" in testing and "still run" in testing, testing


def test_a_bundle_install_waits_for_a_rollback_in_progress_and_never_nests(fake_system, tmp_path):
    """A race probe: install.sh's two moves with a rollback between them moved the new bundle
    *into* the old one's folder, lost bundle.previous, exited 0, and the door kept the old
    model. Both now take one swap lock; the install gives up, unchanged, while it is held."""
    import fcntl

    from happyhouse.daemon.model_history import swap_lock_path

    fs = fake_system
    fs.install("--bundle", str(_bundle(tmp_path)))
    dest = fs.path("/etc/happyhouse/bundle")
    with open(swap_lock_path(dest), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a rollback under way
        proc = fs.install("--bundle-only", "--bundle", str(_bundle(tmp_path, b"TFL3-adapted")),
                          check=False, HAPPYHOUSE_SWAP_WAIT="1")
    assert proc.returncode == 2 and "another install or rollback" in proc.stderr, proc.stderr
    assert (dest / "model.tflite").read_bytes() == b"TFL3-general"
    assert not fs.path("/etc/happyhouse/bundle.new").exists()
    fs.install("--bundle-only", "--bundle", str(_bundle(tmp_path, b"TFL3-adapted")))
    assert (dest / "model.tflite").read_bytes() == b"TFL3-adapted"
    assert sorted(p.name for p in dest.iterdir() if p.is_dir()) == []  # nothing nested


def test_a_bundle_copy_that_fills_the_disk_is_one_error_and_leaves_nothing(fake_system, tmp_path):
    """A full card: only cp's "No space left on device" lines, exit 1, and a half-written
    bundle.new left filling the rest of the card."""
    fs = fake_system
    bundle = _bundle(tmp_path)
    fs.install("--bundle", str(bundle))
    (bundle / "model.tflite").write_bytes(b"TFL3-adapted")
    real_cp = shutil.which("cp")
    (fs.bin / "cp").write_text(
        "#!/usr/bin/env bash\n"
        'case "$*" in *bundle.new/*) printf half >"${@: -1}/model.tflite"\n'
        '  echo "cp: error writing \'model.tflite\': No space left on device" >&2; exit 1;; esac\n'
        f'exec {real_cp} "$@"\n')
    (fs.bin / "cp").chmod(0o755)
    fs.clear_log()
    proc = fs.install("--bundle-only", "--bundle", str(bundle), check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("install.sh: error: the bundle could not be copied")
    assert "not installed, the door keeps its model" in proc.stderr
    assert not fs.path("/etc/happyhouse/bundle.new").exists()
    assert (fs.path("/etc/happyhouse/bundle") / "model.tflite").read_bytes() == b"TFL3-general"
    assert fs.commands("systemctl") == []


@pytest.mark.parametrize("line", ["bundle=/etc/happyhouse/bundle", "  bundle =  /etc/happyhouse/bundle/ ",
                                  "bundle = /etc/happyhouse/bundle  # the house's own"])
def test_a_config_naming_the_bundle_however_spaced_is_not_told_to_set_it(fake_system, tmp_path, line):
    """'bundle=/etc/happyhouse/bundle' (the same setting, no spaces) was told "set '[model]
    bundle = /etc/happyhouse/bundle' in /etc/happyhouse/happyhouse.conf to use it"."""
    fs = fake_system
    fs.install("--bundle", str(_bundle(tmp_path)))
    conf = fs.path(CONF)
    conf.write_text(conf.read_text().replace("\nbundle = /etc/happyhouse/bundle\n", f"\n{line}\n"))
    proc = fs.install("--bundle-only", "--bundle", str(_bundle(tmp_path, b"TFL3-adapted")))
    assert "to use the installed bundle" not in proc.stdout + proc.stderr
    conf.write_text(conf.read_text().replace(f"\n{line}\n", "\n#bundle = /etc/happyhouse/bundle2\n"))
    proc = fs.install("--bundle-only", "--bundle", str(_bundle(tmp_path, b"TFL3-again")))
    assert "to use the installed bundle" in proc.stdout + proc.stderr  # and still said when it is not set
