"""SIGHUP reloads through :class:`Service` itself (a field test's findings): a reload that
fails half-way leaves the old latch and inputs whole, a new relock cap takes effect, the
state folder's lock moves with ``[service] state_dir``, a refused bundle is tried again
once mended, and a file the service cannot read is one clear line, never a crash."""

import json
import shutil

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from fakes import reseal_bundle
from happyhouse.daemon import bundle as bundle_module
from happyhouse.daemon import statelock
from happyhouse.daemon.bundle import GOLDEN_FILE, META_FILE, default_bundle_path, load_bundle
from happyhouse.daemon.config import load_config
from happyhouse.daemon.devices import read_pictures
from happyhouse.daemon.errors import BusyError, ModelError, SourceError
from happyhouse.daemon.fakes import FakeSource
from happyhouse.daemon.service import Service


def frames():
    return FakeSource([np.zeros((480, 640, 3), np.uint8)], loop=True)


def service(tmp_path, old, new, factory=None):
    """A started service on ``old`` whose reload switches to ``new`` (config values)."""
    base = {"latch.gpio": "mock", "service.state_dir": str(tmp_path / "state")}
    configs = [load_config(None, {**base, **values}) for values in (old, new)]
    svc = Service.from_config(configs[0], reload=lambda: configs[1],
                              pin_factory=factory or MockFactory(), source=frames())
    svc.start()
    return svc


def test_a_reload_whose_exit_button_cannot_be_claimed_keeps_the_old_latch_and_inputs(tmp_path, caplog):
    """The new latch pin was driven and the old inputs closed before the exit button failed;
    the "keeping the old one" rebuild then saw a latch and rebuilt nothing: the door ran
    on the new pin without its exit button."""
    factory = MockFactory()
    old = {"latch.pin": "GPIO17", "latch.exit_button_pin": "GPIO27", "latch.door_contact_pin": "GPIO22"}
    new = {**old, "latch.pin": "GPIO5", "latch.exit_button_pin": "BOARD1"}  # BOARD1: the 3V3 pin
    svc = service(tmp_path, old, new, factory)
    try:
        svc.reload()
        assert "keeping the old one" in caplog.text
        assert svc.cfg.latch_pin == "GPIO17" and svc.parts.latch.pin_name == "GPIO17"
        assert sorted(type(d).__name__ for d in svc.parts.inputs) == ["DoorContact", "ExitButton"]
        assert factory.pin("GPIO5").function == "input"  # the half-built latch was released
        svc.step()
        factory.pin("GPIO27").drive_low()  # the house's exit button still opens
        factory.pin("GPIO27").drive_high()
        svc.step()
        assert svc.unlocks == 1 and factory.pin("GPIO17").state
    finally:
        svc.stop("done")
        svc.close()
    assert not factory.pin("GPIO17").state


def test_a_reload_that_raises_the_longest_opening_raises_the_latch_own_cap(tmp_path):
    svc = service(tmp_path, {"decision.unlock_seconds": 5.0, "decision.max_unlock_seconds": 15.0},
                  {"decision.unlock_seconds": 30.0, "decision.max_unlock_seconds": 30.0})
    try:
        assert svc.parts.latch.max_open_s == 15.0
        svc.reload()
        assert svc.parts.latch.max_open_s == 30.0
        assert svc.parts.latch.unlock(svc.door.unlock_seconds) == 30.0
    finally:
        svc.stop("done")
        svc.close()


def test_a_reload_that_moves_the_state_folder_takes_its_lock(tmp_path):
    """Only the start-up folder was locked: after the move, --once --actuate with the
    (new) config found the new folder free and drove the latch beside the service."""
    moved = tmp_path / "moved"
    svc = service(tmp_path, {}, {"service.state_dir": str(moved)})
    try:
        svc.reload()
        assert svc.cfg.service_state_dir == str(moved)
        with pytest.raises(BusyError, match="door service"):
            statelock.acquire(str(moved), "--once --actuate")
    finally:
        svc.stop("done")
        svc.close()
    statelock.acquire(str(moved), "--once --actuate").release()  # released on close


def test_a_reload_into_a_state_folder_another_program_holds_keeps_the_old_config(tmp_path, caplog):
    moved = tmp_path / "moved"
    other = statelock.acquire(str(moved), "--once --actuate")
    svc = service(tmp_path, {}, {"service.state_dir": str(moved)})
    try:
        svc.reload()
        assert svc.cfg.service_state_dir == str(tmp_path / "state")
        assert "state_dir cannot move" in caplog.text and "--once --actuate" in caplog.text
    finally:
        svc.stop("done")
        svc.close()
        other.release()


def test_a_reload_back_to_the_start_up_state_folder_is_applied(tmp_path):
    """Moving back to the first folder was refused: this very process holds its lock."""
    start, moved = tmp_path / "state", tmp_path / "moved"
    base = {"latch.gpio": "mock"}
    configs = [load_config(None, {**base, "service.state_dir": str(d)}) for d in (start, moved, start)]
    held = statelock.acquire(str(start), statelock.SERVICE_PURPOSE)  # what the CLI takes
    order = iter(configs[1:])
    svc = Service.from_config(configs[0], reload=lambda: next(order), pin_factory=MockFactory(),
                              source=frames())
    svc.start()
    try:
        svc.reload()
        assert svc.cfg.service_state_dir == str(moved)
        svc.reload()
        assert svc.cfg.service_state_dir == str(start)
        with pytest.raises(BusyError):  # both folders stay the service's until it stops
            statelock.acquire(str(moved), "--once --actuate")
    finally:
        svc.stop("done")
        svc.close()
        held.release()


def renamed_copy(tmp_path, name):
    """The shipped bundle under another name, sealed as a converter writes it."""
    out = tmp_path / name
    shutil.copytree(default_bundle_path(), out)
    meta = json.loads((out / META_FILE).read_text())
    meta["name"] = name
    (out / META_FILE).write_text(json.dumps(meta))
    reseal_bundle(out)
    return out


def test_a_refused_bundle_is_loaded_by_the_next_reload_once_mended(tmp_path, caplog):
    """It was "not retried until the bundle changes again" (model.json did not change), so
    the mended bundle never served while every reload said "config reloaded"."""
    at = tmp_path / "bundle"
    shutil.copytree(default_bundle_path(), at)
    svc = service(tmp_path, {"model.bundle": str(at)}, {"model.bundle": str(at)})
    try:
        new = renamed_copy(tmp_path, "house")
        shutil.rmtree(at)
        shutil.copytree(new, at)
        (at / GOLDEN_FILE).unlink()  # a copy that missed one file
        svc.reload()
        assert "refused" in caplog.text and svc.parts.pipeline.bundle.meta["name"] != "house"
        shutil.copy(new / GOLDEN_FILE, at / GOLDEN_FILE)
        svc.reload()
        assert svc.parts.pipeline.bundle.meta["name"] == "house"
    finally:
        svc.stop("done")
        svc.close()


def denied(*_args, **_kwargs):
    raise PermissionError(13, "Permission denied")


def test_an_unreadable_bundle_file_is_a_model_error(tmp_path, monkeypatch):
    monkeypatch.setattr(bundle_module, "sha256_file", denied)
    with pytest.raises(ModelError, match="cannot be read .Permission denied.*read access"):
        load_bundle(default_bundle_path())


def test_a_reload_onto_an_unreadable_bundle_keeps_serving(tmp_path, monkeypatch, caplog):
    at = tmp_path / "bundle"
    shutil.copytree(default_bundle_path(), at)
    svc = service(tmp_path, {"model.bundle": str(at)}, {"model.bundle": str(at)})
    try:
        serving = svc.parts.pipeline
        shutil.rmtree(at)
        shutil.copytree(renamed_copy(tmp_path, "house"), at)
        monkeypatch.setattr(bundle_module, "sha256_file", denied)
        svc.reload()  # it stopped the service with a PermissionError traceback
        assert svc.parts.pipeline is serving and "still serving the previous model" in caplog.text
    finally:
        svc.stop("done")
        svc.close()


def test_an_image_folder_that_cannot_be_listed_is_a_source_error(tmp_path, monkeypatch):
    folder = tmp_path / "frames"
    folder.mkdir()
    monkeypatch.setattr(type(folder), "iterdir", denied)
    with pytest.raises(SourceError, match="cannot be listed .Permission denied"):
        read_pictures(folder)


@pytest.mark.parametrize("spelling", ["trailing slash", "symlink"])
def test_another_spelling_of_the_held_state_folder_is_the_same_folder(tmp_path, caplog, spelling):
    """``state_dir = /x/state/`` (or a symlink to it) was refused as "another" folder whose
    lock the service itself held, with advice to stop the service; every other change of
    that reload was thrown away."""
    start = tmp_path / "state"
    if spelling == "symlink":
        (tmp_path / "link").symlink_to(start, target_is_directory=True)
        other = str(tmp_path / "link")
    else:
        other = str(start) + "/"
    base = {"latch.gpio": "mock"}
    configs = [load_config(None, {**base, "service.state_dir": str(start)}),
               load_config(None, {**base, "service.state_dir": other,
                                  "decision.unlock_seconds": 4.0})]
    held = statelock.acquire(str(start), statelock.SERVICE_PURPOSE)  # what the CLI takes
    svc = Service.from_config(configs[0], reload=lambda: configs[1], pin_factory=MockFactory(),
                              source=frames())
    svc.start()
    try:
        svc.reload()
        assert "cannot move" not in caplog.text
        assert svc.cfg.service_state_dir == other and svc.door.unlock_seconds == 4.0
    finally:
        svc.stop("done")
        svc.close()
        held.release()


def test_a_failed_reload_keeps_serving_the_model_it_had_even_if_its_bundle_is_gone(tmp_path, caplog):
    """The reload loaded the new model, then failed on the camera; its "keeping the old one"
    then reloaded the old bundle from disk, which had been removed: the service stopped."""
    import cv2

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    cv2.imwrite(str(pictures / "a.png"), np.zeros((480, 640, 3), np.uint8))
    old_bundle, new_bundle = tmp_path / "B1", tmp_path / "B"
    shutil.copytree(default_bundle_path(), old_bundle)
    shutil.copytree(default_bundle_path(), new_bundle)
    base = {"latch.gpio": "mock", "service.state_dir": str(tmp_path / "state")}
    configs = [load_config(None, {**base, "camera.source": str(pictures), "model.bundle": str(old_bundle)}),
               load_config(None, {**base, "camera.source": str(tmp_path / "not-there"),
                                  "model.bundle": str(new_bundle)})]
    svc = Service.from_config(configs[0], reload=lambda: configs[1], pin_factory=MockFactory())
    svc.start()
    try:
        serving = svc.parts.pipeline
        shutil.rmtree(old_bundle)
        svc.reload()  # raised ModelError "does not exist" and ended the service
        assert "keeping the old one" in caplog.text
        assert svc.parts.pipeline is serving and svc.cfg.model_bundle == str(old_bundle)
        # the undo's look at the old path named it "the new model bundle"
        assert "new model bundle" not in caplog.text
        assert f"the model bundle now at {old_bundle} is refused" in caplog.text
        svc.step()
        assert svc.unlocks == 0 and not svc.parts.latch.is_unlocked
    finally:
        svc.stop("done")
        svc.close()


def test_openings_are_numbered_on_across_a_reload(tmp_path, caplog):
    """Each reload's door started its own count: the journal said "unlock #1" twice in one
    run and the systemd status restarted at 1, while the page counted on."""
    import logging

    caplog.set_level(logging.INFO)
    factory = MockFactory()
    svc = service(tmp_path, {"latch.exit_button_pin": "GPIO27"},
                  {"latch.exit_button_pin": "GPIO27", "decision.unlock_seconds": 4.0}, factory)
    try:
        svc.step()
        factory.pin("GPIO27").drive_low()  # the exit button opens the door
        factory.pin("GPIO27").drive_high()
        svc.step()
        svc.reload()
        svc.step()
        factory.pin("GPIO27").drive_low()
        factory.pin("GPIO27").drive_high()
        svc.step()
        assert svc.unlocks == 2
        assert "unlock #1 " in caplog.text and "unlock #2 " in caplog.text
        assert caplog.text.count("unlock #1 ") == 1
        assert svc.door.status_text().endswith("unlocks: 2")
    finally:
        svc.stop("done")
        svc.close()


def test_a_reload_that_changes_the_latchs_wiring_says_so(tmp_path, caplog):
    """A config read as defaults flipped an active-low latch to active high on a reload that
    logged only "config reloaded"."""
    import logging

    svc = service(tmp_path, {"latch.pin": "GPIO5", "latch.active_high": False}, {})
    try:
        with caplog.at_level(logging.INFO, logger="happyhouse.daemon.service"):
            svc.reload()
        said = [r for r in caplog.records if "the latch moved" in r.getMessage()]
        assert len(said) == 1 and said[0].levelno == logging.WARNING
        assert "from GPIO5 (active low) to GPIO17 (active high)" in said[0].getMessage()
        caplog.clear()
        svc.reload()  # the same wiring again: nothing to say
        assert not [r for r in caplog.records if "the latch moved" in r.getMessage()]
    finally:
        svc.stop("test")


def test_a_refused_reload_is_said_in_the_status_line_until_a_reload_applies(tmp_path):
    """`systemctl reload` reports success and only the journal said the new config was
    refused: the technician believed the file was live until the next restart failed."""
    from happyhouse.daemon.errors import ConfigError
    from happyhouse.daemon.service import KEPT_OLD_CONFIG

    base = {"latch.gpio": "mock", "service.state_dir": str(tmp_path / "state")}
    answers = []

    def reload():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    svc = Service.from_config(load_config(None, base), reload=reload, pin_factory=MockFactory(),
                              source=frames())
    svc.start()
    try:
        answers.append(ConfigError("h.conf: [model] threshold = '0,9' is invalid"))
        svc.reload()
        assert KEPT_OLD_CONFIG in svc.door.status_text()
        answers.append(load_config(None, {**base, "decision.unlock_seconds": 2.0}))
        svc.reload()
        assert KEPT_OLD_CONFIG not in svc.door.status_text()
    finally:
        svc.stop("test")


def test_a_reload_says_when_the_serving_bundle_is_damaged_on_disk_or_refused(tmp_path, caplog):
    """A cp over model.tflite, then a reload: "config reloaded" and an armed status line while
    the next restart would refuse the bundle (the reload compared model.json alone); a bundle
    a reload refused was followed by "config reloaded" too, with nothing in the status line."""
    import logging

    from happyhouse.daemon.bundle import MODEL_FILE
    from happyhouse.daemon.service import MODEL_REFUSED

    at = tmp_path / "bundle"
    shutil.copytree(default_bundle_path(), at)
    svc = service(tmp_path, {"model.bundle": str(at)}, {"model.bundle": str(at)})
    try:
        with open(at / MODEL_FILE, "r+b") as handle:
            handle.truncate(50000)
        with caplog.at_level(logging.INFO, logger="happyhouse.daemon.service"):
            svc.reload()
        assert "no longer loads" in caplog.text and "a restart would refuse it" in caplog.text
        assert "config reloaded, but the model bundle was refused" in caplog.text
        assert MODEL_REFUSED in svc.door.status_text()
        shutil.rmtree(at)
        shutil.copytree(default_bundle_path(), at)  # reinstalled
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="happyhouse.daemon.service"):
            svc.reload()
        assert MODEL_REFUSED not in svc.door.status_text() and "config reloaded" in caplog.text
        (at / "model.json").write_text("{broken")
        svc.reload()
        assert MODEL_REFUSED in svc.door.status_text()
    finally:
        svc.stop("done")
        svc.close()
