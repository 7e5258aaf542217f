"""Soak (opt-in: HAPPYHOUSE_SOAK=1): many thousands of frames through the real door loop
(scripts/soak.py), sampling RSS, open fds and threads; growth after warm-up must stay
small. ``HAPPYHOUSE_SOAK_FRAMES`` sets the length (default 20000)."""

import os
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"


@pytest.mark.soak
def test_soak_memory_fds_and_threads_stay_flat(data_root, tmp_path, study_script):
    soak = study_script(SCRIPT.name)
    frames = int(os.environ.get("HAPPYHOUSE_SOAK_FRAMES", "20000"))
    h5 = data_root / "happy-house" / "test_happy.h5"
    report = soak.soak(frames, str(h5) if h5.is_file() else None, every=max(100, frames // 20),
                       state_dir=str(tmp_path))
    print(f"\nsoak: {report['frames']} frames, {report['pipeline_calls']} scored, "
          f"{report['unlocks']} unlocks, {report['seconds']} s; RSS "
          f"{report['rss_kb_after_warmup']} -> {report['rss_kb_last']} KiB "
          f"({report['rss_growth_kb_after_warmup']:+d}); fds {report['fd_growth_after_warmup']:+d}; "
          f"threads {report['thread_growth_after_warmup']:+d}")
    assert report["frames"] == frames and report["unlocks"] > 0
    assert report["fd_growth_after_warmup"] <= 0
    assert report["thread_growth_after_warmup"] <= 1  # a latch relock timer may be live
    # a leak of one frame (0.9 MB) per 1000 frames would show as several MB here
    assert report["rss_growth_kb_after_warmup"] < 8 * 1024
