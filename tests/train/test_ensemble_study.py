"""scripts/ensemble_study.py: cached scores belong to a model's content, not to its path."""

import numpy as np


def test_a_replaced_model_at_the_same_path_is_scored_again(study_script, monkeypatch, tmp_path):
    from happyhouse.train import label_audit, trainer

    study = study_script("ensemble_study.py")
    scored = []

    def predict(net, faces, spec):
        scored.append(net)
        return np.full(len(faces), float(len(net)))

    monkeypatch.setattr(trainer, "load_model", lambda path: _contents(path))
    monkeypatch.setattr(trainer, "predict", predict)
    monkeypatch.setattr(label_audit, "model_contract", lambda path: None)
    model, cache = tmp_path / "model.keras", tmp_path / "cache"
    cache.mkdir()
    copies = {"validation": (np.arange(3), np.zeros((3, 64, 64, 3), np.uint8))}
    model.write_text("one model")
    first = study.classifier_scores(model, copies, cache)
    again = study.classifier_scores(model, copies, cache)
    assert len(scored) == 1 and np.array_equal(first["validation"], again["validation"])
    model.write_text("another model, same path")
    replaced = study.classifier_scores(model, copies, cache)
    assert len(scored) == 2 and not np.array_equal(first["validation"], replaced["validation"])


def _contents(path):
    """A stand-in for a loaded model: the file's text."""
    return path.read_text()
