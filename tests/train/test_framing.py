"""How the door frames a face against how the datasets did (issue 15), on real faces."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def gate():
    from happyhouse.daemon.config import load_config
    from happyhouse.daemon.facegate import FaceGate

    return FaceGate.from_config(load_config(None, {"latch.gpio": "mock"}))


def _faces(root, n=12):
    from happyhouse.daemon.datasets import load_dataset

    return load_dataset(root, size=64, limit=n // 2).images


def test_the_gate_frames_genki_as_genki_did_and_smilesmiled_looser(gate, genki_root, smile_root):
    from happyhouse.train.framing import door_framed

    _, found_g, ratio_g, _ = door_framed(_faces(genki_root), gate)
    _, found_s, ratio_s, offset_s = door_framed(_faces(smile_root), gate)
    assert found_g.sum() >= 9 and found_s.sum() >= 8
    assert 0.85 < np.nanmedian(ratio_g) < 1.15
    # SMILEsmileD's crops are tighter than the door's: the gate's box is larger than the crop
    assert np.nanmedian(ratio_s) > 1.15
    assert np.all(np.isnan(ratio_s[~found_s]))


def test_door_framed_crops_are_the_contracts_and_a_tighter_margin_zooms_in(gate, smile_root):
    from happyhouse.train.framing import door_framed, on_canvas

    faces = _faces(smile_root, 4)
    assert on_canvas(faces[0]).shape == (480, 640, 3)
    crops, found, _, _ = door_framed(faces, gate, (0.0, -0.1))
    loose, tight = crops[0.0], crops[-0.1]
    assert loose.shape == (4, 64, 64, 3) and loose.dtype == np.uint8
    assert found.any()
    i = int(np.flatnonzero(found)[0])
    # the canvas's flat gray shows at the loose crop's edge, not inside the tighter one
    def gray_edge(crop):
        edge = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]]).astype(int)
        return np.mean(np.all(np.abs(edge - 110) <= 3, axis=1))
    assert gray_edge(loose[i]) > gray_edge(tight[i])
    assert (loose[~found] == 0).all() and (tight[~found] == 0).all()


def test_a_missing_model_is_named_before_the_data_loads(tmp_path, capsys, monkeypatch):
    """A mistyped --model loaded every training face first, then blamed split.json."""
    from fakes import forbid
    from happyhouse.train import data, framing

    forbid(monkeypatch, data, ("load_training_data",), "the data loaded")
    model = tmp_path / "model.keras"
    assert framing.main(["--model", str(model), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"framing: error: model {model} does not exist\n"



@pytest.mark.parametrize("argv, said", [
    (["--margins", "nan"], "--margins must be numbers above -0.5 and at most 1"),
    (["--margins", "inf"], "--margins must be numbers above -0.5 and at most 1"),
])
def test_framing_refuses_what_it_cannot_use_in_one_line(tmp_path, capsys, argv, said):
    """--margins nan: "cannot convert float NaN to integer", a traceback after the loading."""
    from happyhouse.train import framing

    assert framing.main(["--model", str(tmp_path / "m.keras"), "--data", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err, err


def test_framing_ends_on_sigterm_with_one_line(tmp_path, capsys, monkeypatch):
    """It had its own error handling: SIGTERM ended it with no line, a full disk with a
    traceback."""
    import os
    import signal

    from happyhouse.train import framing

    def killed(args):
        os.kill(os.getpid(), signal.SIGTERM)
        return {}

    monkeypatch.setattr(framing, "run", killed)
    assert framing.main(["--model", str(tmp_path / "m.keras"), "--data", str(tmp_path)]) == 143
    assert capsys.readouterr().err == "framing: interrupted by SIGTERM\n"
