"""Issue 16 item 13: a config or bundle others can write is said, and --check is NO-GO."""

import io
import json
import shutil

from happyhouse.daemon import check, cli
from happyhouse.daemon.bundle import default_bundle_path
from happyhouse.daemon.config import load_config


def _report(cfg, tmp_path):
    out = io.StringIO()
    code = check.run_check(cfg, as_json=True, out=out,
                           thermal_path="/nonexistent", throttled=lambda: "throttled=0x0")
    return code, {c["name"]: c for c in json.loads(out.getvalue())["checks"]}


def _conf(tmp_path, text="[latch]\ngpio = mock\n"):
    path = tmp_path / "happyhouse.conf"
    path.write_text(text + f"[service]\nstate_dir = {tmp_path / 'state'}\n")
    return path


def test_world_writable_config_is_no_go(tmp_path):
    conf = _conf(tmp_path)
    conf.chmod(0o666)
    code, by = _report(load_config(str(conf), required=True), tmp_path)
    assert code == 1 and by["config"]["status"] == "fail"
    assert "writable by other users" in by["config"]["detail"]


def test_symlinked_config_is_named_with_its_target(tmp_path):
    conf = _conf(tmp_path)
    link = tmp_path / "link.conf"
    link.symlink_to(conf)
    _, by = _report(load_config(str(link), required=True), tmp_path)
    assert by["config"]["status"] == "warn" and str(conf) in by["config"]["detail"]


def test_bundle_writable_by_others_is_no_go(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(default_bundle_path(), bundle)
    bundle.chmod(0o777)
    cfg = load_config(None, {"model.bundle": str(bundle), "latch.gpio": "mock",
                             "service.state_dir": str(tmp_path / "state")})
    code, by = _report(cfg, tmp_path)
    assert code == 1 and by["model"]["status"] == "fail"
    assert "writable by other users" in by["model"]["detail"]


def test_service_tools_warn_about_a_writable_config(tmp_path, capsys):
    conf = _conf(tmp_path)
    conf.chmod(0o646)
    rc = cli.main(["--once", "--config", str(conf), "--source", str(tmp_path / "none.png")])
    err = capsys.readouterr().err
    assert rc == cli.EXIT_ERROR and "writable by other users" in err


def test_a_file_in_a_folders_place_is_named_as_such(tmp_path):
    """Found by trying it: happyhouse-eval --plot FILE said "--plot FILE cannot be created:
    File exists", which reads as if the folder were there already."""
    import pytest

    from happyhouse.daemon.errors import DataError
    from happyhouse.daemon.filesafety import make_folder

    (tmp_path / "plots").write_text("a file")
    with pytest.raises(DataError, match=r"^--plot .*plots is a file, not a folder: move it away"):
        make_folder(tmp_path / "plots", "--plot")
    # one further down said only "Not a directory"
    with pytest.raises(DataError, match=r"^--plot .*deeper cannot be created: .*plots is a file, "
                                        r"not a folder: move it away"):
        make_folder(tmp_path / "plots" / "deeper", "--plot")
    assert make_folder(tmp_path / "new" / "plots", "--plot").is_dir()


def test_a_state_folder_that_is_a_symlink_to_nothing_is_named_as_such(tmp_path):
    """Found by trying it: the page demo's --state-dir a symlink to nothing said
    "[web] collect_dir STATE/collect cannot be created: File exists"."""
    import pytest

    from happyhouse.daemon import statelock
    from happyhouse.daemon.errors import ConfigError, DataError
    from happyhouse.daemon.web.labels import CollectFolder

    (tmp_path / "state").symlink_to(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"collect_dir .* cannot be created: .*state is a symlink "
                                        r"to .*nowhere, which does not exist"):
        CollectFolder(tmp_path / "state" / "collect")
    with pytest.raises(ConfigError, match=r"state is a symlink to .*nowhere, which does not exist"):
        statelock.acquire(str(tmp_path / "state"), "the door service")
