"""Weight-space interpolation of an adapted model with the general one (``train/interpolate.py``)."""

import json
from argparse import Namespace

import numpy as np
import pytest

from happyhouse.daemon.errors import ModelError
from happyhouse.train.interpolate import blend, blended, choose_alpha, parse_alphas, settle


class Weights:
    """A model as far as interpolation sees one: its list of weight arrays."""

    def __init__(self, arrays):
        self.arrays = [np.array(a, np.float32) for a in arrays]

    def get_weights(self):
        return [a.copy() for a in self.arrays]

    def set_weights(self, arrays):
        self.arrays = [np.array(a) for a in arrays]


GENERAL = [np.zeros((2, 2), np.float32), np.full(3, 4.0, np.float32)]


def test_alphas_are_parsed_sorted_and_checked():
    assert parse_alphas("1, 0,0.5,0.5") == (0.0, 0.5, 1.0)
    for bad in ("", "a,1", "1.5", "-0.1,1"):
        with pytest.raises(ValueError, match="between 0 and 1"):
            parse_alphas(bad)


def test_blend_is_the_weighted_mean_array_by_array_in_the_model_dtype():
    own = [np.ones((2, 2), np.float32), np.zeros(3, np.float32)]
    mixed = blend(own, GENERAL, 0.25)
    assert np.allclose(mixed[0], 0.25) and np.allclose(mixed[1], 3.0)
    assert all(m.dtype == np.float32 for m in mixed)


def test_blended_restores_the_adapted_weights_even_when_scoring_fails():
    model = Weights([np.ones((2, 2)), np.zeros(3)])
    with blended(model, GENERAL, 0.5) as m:
        assert np.allclose(m.arrays[1], 2.0)
    assert np.allclose(model.arrays[0], 1.0) and np.allclose(model.arrays[1], 0.0)
    with pytest.raises(RuntimeError):
        with blended(model, GENERAL, 0.0):
            raise RuntimeError("scoring failed")
    assert np.allclose(model.arrays[0], 1.0)
    settle(model, GENERAL, 0.0)  # for good: the general weights
    assert np.allclose(model.arrays[0], 0.0) and np.allclose(model.arrays[1], 4.0)


def test_a_model_of_another_architecture_is_refused():
    with pytest.raises(ModelError, match="same architecture"):
        with blended(Weights([np.ones((2, 3)), np.zeros(3)]), GENERAL, 0.5):
            pass
    with pytest.raises(ModelError, match="same architecture"):
        settle(Weights([np.ones((2, 2))]), GENERAL, 0.5)


def test_the_alpha_whose_out_of_fold_scores_decide_best_is_chosen_and_ties_go_to_the_larger():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    clean = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    # one not-smiling frame above every smile: the threshold must sit above it
    odd = np.array([0.1, 0.2, 0.3, 0.95, 0.6, 0.7, 0.8, 0.9])
    chosen = choose_alpha(labels, {0.5: clean, 1.0: odd}, 0.01)
    assert chosen["alpha"] == 0.5 and chosen["inner"]["0.5"]["accuracy"] == 1.0
    assert chosen["inner"]["1"]["accuracy"] == 0.5
    assert 0.4 < chosen["threshold"] <= 0.6
    assert choose_alpha(labels, {0.0: clean, 0.5: clean, 1.0: clean}, 0.01)["alpha"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_the_refit_model_a_house_deploys_is_the_chosen_blend(genki_root, tiny_model, tmp_path, alpha):
    """House CV with --interpolate: the fold's model is alpha of the way from the general
    model to the refit one, weight for weight; every alpha's test decisions are kept."""
    from happyhouse.daemon.preprocess import Preprocess
    from happyhouse.train import house_cv
    from happyhouse.train.data import load_training_data
    from happyhouse.train.trainer import load_model

    data = load_training_data([str(genki_root)], Preprocess(crop="face"), limit=10)
    args = Namespace(data=genki_root, work=tmp_path, scratch=None, init=tiny_model, epochs=2,
                     batch_size=8, lr=1e-2, seed=0, augment="none", patience=5,
                     max_false_open=0.01, crop="face", inner_k=2, interpolate=(alpha,))
    rest, test = np.arange(16), np.arange(16, 20)
    model, threshold, info, _ = house_cv.refit_fold(args, data, rest, 0, test)
    general = load_model(tiny_model).get_weights()
    refit = load_model(tmp_path / "fold0" / "refit" / "model.keras").get_weights()
    assert any(not np.allclose(r, g) for r, g in zip(refit, general)), "the refit did not train"
    for deployed, r, g in zip(model.get_weights(), refit, general):
        assert np.allclose(deployed, alpha * r + (1 - alpha) * g, atol=1e-6)
    assert info["interpolation"]["alpha"] == alpha
    assert threshold == info["interpolation"]["inner"][f"{alpha:g}"]["threshold"]
    by_alpha = info[house_cv.BY_ALPHA_KEY]
    assert list(by_alpha) == [alpha] and by_alpha[alpha]["scores"].shape == (4,)
    json.dumps(info["interpolation"])  # the fold row goes into metrics.json as it is


def test_interpolate_is_refused_outside_the_refit_fine_tuning_protocol(capsys):
    from happyhouse.train.house_cv import main

    for extra in (["--protocol", "split"], ["--scratch", "happymodel"], ["--adapt", "last-layer"]):
        with pytest.raises(SystemExit) as stop:
            main(["--data", "x.h5", "--interpolate", "0,1", *extra])
        assert stop.value.code == 2
        assert "--interpolate needs the refit protocol" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--data", "x.h5", "--interpolate", "2"])
    assert "between 0 and 1" in capsys.readouterr().err
