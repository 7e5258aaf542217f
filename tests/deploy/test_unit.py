"""deploy/happyhouse.service: systemd accepts it, and it is locked down.

``systemd-analyze verify`` exits 0 even for unknown keys or bad values (it
only prints warnings), so the check is "no diagnostics at all" on a copy
whose ExecStart binary exists on this machine; mutated units prove the
check can fail.
"""

import re
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "happyhouse.service"
DAEMON = "/opt/happyhouse/venv/bin/happyhouse-daemon"
CONF = "/etc/happyhouse/happyhouse.conf"
MAX_EXPOSURE = 2.0


def parse_unit(text: str) -> dict:
    """{(section, key): [values in order]}; repeated keys accumulate like systemd's."""
    out, section = {}, None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault((section, key.strip()), []).append(value.strip())
    return out


def one(unit: dict, section: str, key: str) -> str:
    values = unit.get((section, key))
    assert values, f"[{section}] {key}= is missing"
    return values[-1]


def checkable_copy(tmp_path: Path, text: str) -> Path:
    """The unit with the daemon path pointed at an executable that exists here."""
    fake = tmp_path / "happyhouse-daemon"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    unit_dir = tmp_path / "units"
    unit_dir.mkdir(exist_ok=True)
    path = unit_dir / "happyhouse.service"
    path.write_text(text.replace(DAEMON, str(fake)))
    return path


def verify(analyze: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([analyze, "verify", "--man=no", str(path)],
                          capture_output=True, text=True, timeout=60)


def exposure(analyze: str, path: Path) -> float:
    proc = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(path)],
                          capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert match, f"no exposure line in systemd-analyze output:\n{proc.stdout}\n{proc.stderr}"
    return float(match.group(1))


def test_verify_is_clean(systemd_analyze, tmp_path):
    proc = verify(systemd_analyze, checkable_copy(tmp_path, UNIT.read_text()))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", f"systemd-analyze verify complains:\n{proc.stderr}"


def test_verify_only_misses_the_daemon_on_this_machine(systemd_analyze):
    # The real file, unmodified: the only complaint allowed is that the
    # daemon is not installed here.
    proc = verify(systemd_analyze, UNIT)
    other = [line for line in proc.stderr.splitlines()
             if line.strip() and f"Command {DAEMON} is not executable" not in line]
    assert other == [], "\n".join(other)


@pytest.mark.parametrize("mutation", [
    ("Type=notify", "Typo=notify"),                      # unknown key
    ("DevicePolicy=closed", "DevicePolicy=clsoed"),      # bad value
    ("RestrictAddressFamilies=AF_UNIX", "RestrictAddressFamilies=AF_UNICORN"),
    ("SystemCallFilter=@system-service", "SystemCallFilter=@sytem-service"),
])
def test_verify_catches_unit_mistakes(systemd_analyze, tmp_path, mutation):
    old, new = mutation
    text = UNIT.read_text()
    assert old in text
    proc = verify(systemd_analyze, checkable_copy(tmp_path, text.replace(old, new, 1)))
    assert proc.returncode != 0 or proc.stderr.strip(), f"{new} went unnoticed"


def test_exposure_is_low(systemd_analyze, tmp_path):
    level = exposure(systemd_analyze, checkable_copy(tmp_path, UNIT.read_text()))
    print(f"systemd-analyze security exposure: {level}")
    assert level <= MAX_EXPOSURE


def test_exposure_check_can_fail(systemd_analyze, tmp_path):
    # The same service without its sandbox scores far worse: the parser reads
    # the real figure.
    lines = UNIT.read_text().split("# ---- Sandbox", 1)[0]
    bare = lines + "\n[Install]\nWantedBy=multi-user.target\n"
    assert exposure(systemd_analyze, checkable_copy(tmp_path, bare)) > MAX_EXPOSURE


def test_service_contract():
    unit = parse_unit(UNIT.read_text())
    s = "Service"
    assert one(unit, s, "Type") == "notify"
    assert one(unit, s, "NotifyAccess") == "main"
    assert one(unit, s, "WatchdogSec")
    assert one(unit, s, "Restart") == "on-failure"
    # systemctl stop during start-up: the daemon says so and exits 128 + SIGTERM
    assert one(unit, s, "SuccessExitStatus") == "143"
    assert one(unit, "Unit", "StartLimitIntervalSec") and one(unit, "Unit", "StartLimitBurst")
    for key in ("TimeoutStopSec", "TimeoutAbortSec"):
        assert re.fullmatch(r"\d+s", one(unit, s, key)) and int(one(unit, s, key)[:-1]) <= 10
    assert one(unit, s, "User") == "happyhouse"
    assert set(one(unit, s, "SupplementaryGroups").split()) >= {"gpio", "video"}
    assert one(unit, s, "StateDirectory") == "happyhouse"
    assert one(unit, s, "ConfigurationDirectory") == "happyhouse"
    assert one(unit, s, "ExecStart") == f"{DAEMON} --config {CONF}"
    # The latch is released by a second process after any stop, crash included.
    stop_post = one(unit, s, "ExecStopPost")
    assert stop_post.split() == [DAEMON, "--force-lock", "--config", CONF]
    # lgpio writes FIFOs into its working directory: it must be writable.
    assert one(unit, s, "WorkingDirectory") == "/run/" + one(unit, s, "RuntimeDirectory")


def test_sandbox_keeps_the_hardware_reachable():
    unit = parse_unit(UNIT.read_text())
    s = "Service"
    # PrivateDevices would hide /dev/gpiochip*; DynamicUser cannot own the
    # gpio/video group memberships.
    assert ("Service", "PrivateDevices") not in unit
    assert ("Service", "DynamicUser") not in unit
    assert ("Service", "ProcSubset") not in unit  # gpiozero reads /proc/cpuinfo
    assert one(unit, s, "DevicePolicy") == "closed"
    allowed = {v.split()[0] for v in unit[(s, "DeviceAllow")]}
    assert {"char-gpiochip", "char-video4linux", "char-media", "char-dma_heap"} <= allowed
    assert any("gpiomem" in a for a in allowed)
    families = set(one(unit, s, "RestrictAddressFamilies").split())
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= families and "AF_PACKET" not in families
    assert one(unit, s, "CapabilityBoundingSet") == ""
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "MemoryDenyWriteExecute",
                "RestrictSUIDSGID", "LockPersonality", "RestrictRealtime"):
        assert one(unit, s, key) == "yes", key
    assert one(unit, s, "ProtectSystem") == "strict"


def test_the_documented_bound_on_a_frozen_daemon_matches_the_unit():
    """docs/operations.md states how long a frozen daemon (SIGSTOP) can hold the latch
    under systemd (issue 16 item 3): WatchdogSec + TimeoutAbortSec, then ExecStopPost.
    The figures there must be the unit's."""
    unit = parse_unit(UNIT.read_text())
    watchdog = int(one(unit, "Service", "WatchdogSec").rstrip("s"))
    abort = int(one(unit, "Service", "TimeoutAbortSec").rstrip("s"))
    assert "--force-lock" in one(unit, "Service", "ExecStopPost")
    docs = (UNIT.parents[1] / "docs" / "operations.md").read_text()
    section = docs.split("### What bounds an opening", 1)[1].split("\n## ", 1)[0]
    assert f"`WatchdogSec={watchdog}s`" in section and f"`TimeoutAbortSec={abort}s`" in section
    assert f"**{watchdog + abort} s**" in section
    assert "ExecStopPost=happyhouse-daemon --force-lock" in section


def test_only_the_door_page_may_listen(systemd_analyze, tmp_path):
    """Issue 19: with the page enabled the unit allows its one TCP port and no other, and
    its exposure stays at or below 2.0 (the page is on by config, not by the unit)."""
    from happyhouse.daemon.web.keys import DEFAULT_ADDRESS, parse_address

    unit = parse_unit(UNIT.read_text())
    _, port = parse_address(DEFAULT_ADDRESS)
    assert unit[("Service", "SocketBindDeny")] == ["any"]
    tcp = [rule for rule in unit[("Service", "SocketBindAllow")] if "tcp" in rule]
    assert tcp == [f"tcp:{port}"]
    assert "AF_INET" in one(unit, "Service", "RestrictAddressFamilies")  # the page's family
    assert exposure(systemd_analyze, checkable_copy(tmp_path, UNIT.read_text())) <= MAX_EXPOSURE
