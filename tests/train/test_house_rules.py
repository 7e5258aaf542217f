"""A small house's threshold rules (issue 18): what one odd frame can and cannot do."""

import numpy as np
import pytest

from happyhouse.daemon.geometry import fuse, logit
from happyhouse.train import house_rules, report


def _house(seed=0, n_not=53, n_happy=67):
    rng = np.random.default_rng(seed)
    neg = 1 / (1 + np.exp(-rng.normal(-3.0, 1.0, n_not)))
    pos = 1 / (1 + np.exp(-rng.normal(3.0, 1.0, n_happy)))
    return np.r_[np.zeros(n_not, int), np.ones(n_happy, int)], np.r_[neg, pos]


def test_empirical_is_the_protocols_own_rule():
    labels, scores = _house()
    assert house_rules.empirical(labels, scores, 0.01) == report.choose_threshold(labels, scores, 0.01)


def test_one_outlier_sets_the_empirical_threshold_but_not_the_robust_one():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(53, int), np.ones(67, int)]
    scores = 1 / (1 + np.exp(-np.r_[rng.normal(0.5, 1.0, 53), rng.normal(6.0, 1.0, 67)]))
    odd = scores.copy()
    odd[0] = 0.9995  # a not-smiling frame that scores like a grin
    assert house_rules.empirical(labels, odd) > 0.9995
    before, after = house_rules.robust_gaussian(labels, scores), house_rules.robust_gaussian(labels, odd)
    assert abs(logit(after) - logit(before)) < 0.2
    # the normal 1% tail of the not-smiling logits: N(0.5, 1) -> about 0.5 + 2.33
    assert abs(logit(after) - 2.83) < 0.6
    assert ((odd >= after) & (labels == 1)).sum() >= 60  # the smiles still open
    assert house_rules.tolerant(labels, odd, allowed=1) < 0.999


def test_robust_threshold_follows_the_spread_of_the_not_smiling_scores():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(60, int), np.ones(60, int)]
    tight = np.r_[1 / (1 + np.exp(-rng.normal(1.0, 0.2, 60))), np.full(60, 0.99)]
    wide = np.r_[1 / (1 + np.exp(-rng.normal(1.0, 1.5, 60))), np.full(60, 0.99)]
    t_tight, t_wide = house_rules.robust_gaussian(labels, tight), house_rules.robust_gaussian(labels, wide)
    assert t_wide > t_tight > 0.5
    assert abs(logit(t_wide) - (1.0 + 2.326 * 1.5)) < 0.6


def test_rules_never_go_below_even_odds_or_above_one():
    labels = np.r_[np.zeros(20, int), np.ones(20, int)]
    low = np.r_[np.full(20, 1e-4), np.full(20, 0.3)]
    for rule in house_rules.RULES.values():
        t = rule(labels, low)
        assert 0.5 <= t <= 1.0
    assert house_rules.robust_gaussian(np.array([1, 1, 0]), np.array([0.9, 0.8, 0.1])) == 1.0


def test_tolerant_allows_exactly_that_many_false_opens():
    labels, scores = _house(2)
    for allowed in (0, 1, 3):
        t = house_rules.tolerant(labels, scores, allowed)
        assert ((scores >= t) & (labels == 0)).sum() <= allowed
        opened_negatives = np.sort(scores[labels == 0])[::-1]
        assert t <= max(np.nextafter(opened_negatives[allowed], 1), 0.5)


def test_stack_learns_which_score_carries_the_house():
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(60, int), np.ones(60, int)]
    useful = 1 / (1 + np.exp(-(4 * (labels - 0.5) * 2 + rng.normal(0, 1, 120))))
    noise = rng.uniform(0.05, 0.95, 120)
    a, b, _ = house_rules.fit_stack(useful, noise, labels)
    assert a > 5 * abs(b)
    a, b, _ = house_rules.fit_stack(noise, useful, labels)
    assert b > 5 * abs(a)


def _saved(with_geometry=True):
    """A --scores-out file of a 2-fold house with known inner scores."""
    labels = np.array([0, 0, 0, 1, 1, 1] * 4)
    fold = np.array([0] * 12 + [1] * 12)
    rng = np.random.default_rng(4)
    cls = np.clip(np.where(labels == 1, 0.8, 0.2) + rng.normal(0, 0.05, 24), 0.01, 0.99)
    geo = np.where(labels == 1, 0.7, 0.3) if with_geometry else np.full(24, np.nan)
    has_face = np.ones(24, bool)
    has_face[3] = False  # a smile the gate missed: never opened
    saved = {"labels": labels, "fold": fold, "has_face": has_face, "geometry": geo,
             "classifier": cls, "weights": np.array([0.7, 0.3])}
    for f in (0, 1):
        rest = np.flatnonzero((fold != f) & has_face)  # as house_cv: no face, no training
        saved[f"inner{f}_rest"] = rest
        saved[f"inner{f}_inner"] = np.arange(len(rest)) % 2
        saved[f"inner{f}_classifier"] = cls[rest]
    return saved


def _write_saved(path, s):
    """``s`` through house_cv's own writer, as a --scores-out file."""
    from happyhouse.train.house_cv import save_scores

    cv = {"classifier": s["classifier"], "scores": s["classifier"],
          "folds": [{"threshold": 0.6}, {"threshold": 0.7}],
          "inner_scores": [{"rest": s[f"inner{f}_rest"], "inner": s[f"inner{f}_inner"],
                            "classifier": s[f"inner{f}_classifier"]} for f in (0, 1)]}
    save_scores(path, s["labels"], s["has_face"], s["fold"], s["geometry"], cv, (0.7, 0.3))
    return path


def test_study_decides_every_frame_once_per_variant():
    out = house_rules.study(_saved())
    assert set(out) == {"FR0", "FR1", "FR2", "SR0", "SR1", "SR2"}
    for res in out.values():
        assert res["n"] == 24 and len(res["thresholds"]) == 2
        assert res["correct"] + res["false_opens"] + res["missed"] == 24
        assert res["missed"] >= 1  # the faceless smile
    # the fixed fusion's R0 threshold is the protocol's: chosen on the fused inner scores
    s = _saved()
    rest = s["inner0_rest"]
    want = report.choose_threshold(s["labels"][rest], fuse(s["classifier"][rest], s["geometry"][rest],
                                                           (0.7, 0.3)), 0.01)
    assert out["FR0"]["thresholds"][0] == pytest.approx(want, abs=1e-4)
    assert set(house_rules.study(_saved(with_geometry=False))) == {"FR0", "FR1", "FR2"}


def test_study_hands_out_the_per_frame_decisions_its_counts_come_from():
    s = _saved()
    counts = house_rules.study(s)
    out = house_rules.study(s, decisions=True)
    y = s["labels"] == 1
    for name, res in out.items():
        opened = res.pop("opened")
        assert opened.shape == (24,) and opened.dtype == bool
        assert res == counts[name]  # the same decisions, only handed out as well
        assert int((opened == y).sum()) == res["correct"]
        assert int((opened & ~y).sum()) == res["false_opens"]
        assert not opened[3]  # the smile without a face stays shut
    assert "opened" not in counts["FR0"]  # off unless asked: analyse writes JSON


def test_saved_scores_round_trip(tmp_path):
    s = _saved()
    path = _write_saved(tmp_path / "scores.npz", s)
    back = dict(np.load(path))
    assert house_rules.study(back) == house_rules.study(s)
    assert back["thresholds"].tolist() == [0.6, 0.7]


def test_house_head_corrects_the_general_head_only_as_far_as_the_house_shows():
    from happyhouse.daemon.geometry import GeometryHead
    from happyhouse.train.geometry import fit_house_head

    rng = np.random.default_rng(6)
    x = rng.normal(0, 1, (120, 936))
    labels = np.r_[np.zeros(60, int), np.ones(60, int)]
    x[labels == 1, 7] += 2.0  # this house smiles along a feature the general head ignores
    general = GeometryHead(weights=np.zeros(936), bias=0.0)
    general.weights[3] = 0.3  # ... and the general head reads one that means nothing here
    head = fit_house_head(general, x, labels)
    assert head.weights.shape == (936,)
    correction = head.weights - general.weights
    assert np.argmax(np.abs(correction)) == 7 and correction[7] > 0
    assert correction[3] < 0  # the general head's feature is toned down, not dropped
    new = rng.normal(0, 1, (200, 936))
    new_labels = np.r_[np.zeros(100, int), np.ones(100, int)]
    new[new_labels == 1, 7] += 2.0
    def auc(head):
        scores = np.array([head.score(v) for v in new])
        pos, neg = scores[new_labels == 1], scores[new_labels == 0]
        return (pos[:, None] > neg[None, :]).mean()

    assert auc(head) > max(auc(general) + 0.08, 0.6)  # it carries to new frames of the house
    with pytest.raises(Exception, match="both classes"):
        fit_house_head(general, x[:60], labels[:60])


def test_study_adds_house_head_variants_with_features():
    from happyhouse.daemon.geometry import GeometryHead

    s = _saved()
    rng = np.random.default_rng(7)
    x = rng.normal(0, 1, (24, 936))
    x[3] = np.nan  # the frame without a face has no mesh
    general = GeometryHead(weights=np.zeros(936), bias=0.0)
    out = house_rules.study(s, x, general)
    assert len(out) == 12 and {"GFR0", "GSR2"} <= set(out)
    for res in out.values():
        assert res["correct"] + res["false_opens"] + res["missed"] == 24
    only = house_rules.study(s, x, general, only=["GFR1", "FR0"])
    assert set(only) == {"GFR1", "FR0"}
    assert only["FR0"] == out["FR0"] and only["GFR1"] == out["GFR1"]


@pytest.fixture(scope="module")
def script(study_script):
    return study_script("house_threshold_study.py")


def test_study_script_compares_variants_from_saved_files(tmp_path, capsys, script):
    import json

    s = _saved()
    scores = _write_saved(tmp_path / "house.npz", s)
    x = np.random.default_rng(8).normal(0, 1, (24, 936))
    np.savez(tmp_path / "features.npz", features=x, labels=s["labels"])
    out = tmp_path / "table.json"
    assert script.main(["analyse", str(scores), "--features", str(tmp_path / "features.npz"),
                        "--only", "FR0", "GFR0", "--json", str(out)]) == 0
    table = {row["variant"]: row for row in json.loads(out.read_text())}
    assert set(table) == {"FR0", "GFR0"}
    assert table["FR0"]["accuracy"] == house_rules.study(s)["FR0"]["correct"] / 24
    assert "FR0" in capsys.readouterr().out
    np.savez(tmp_path / "other.npz", features=x, labels=s["labels"][::-1])
    with pytest.raises(SystemExit, match="other frames"):
        script.main(["analyse", str(scores), "--features", str(tmp_path / "other.npz")])


def test_pseudo_house_door_look_is_one_look_for_every_face(script):
    rng = np.random.default_rng(9)
    faces = rng.integers(0, 256, (6, 64, 64, 3), dtype=np.uint8)
    a, b = script.door_look(faces, 2000), script.door_look(faces, 2000)
    assert np.array_equal(a, b) and a.shape == faces.shape and a.dtype == np.uint8
    assert a.mean() < faces.mean()  # gamma >= 1.4 darkens
    assert not np.array_equal(a, script.door_look(faces, 2001))
    same = np.repeat(faces[:1], 2, axis=0)
    out = script.door_look(same, 2000)
    assert np.array_equal(out[0], out[1])  # one door: the same face looks the same


def test_pseudo_houses_can_collect_more_not_smiling_faces_and_stay_disjoint(genki_root, smile_root,
                                                                          script):
    import argparse
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]

    def house(h, not_smiling=None):
        args = argparse.Namespace(house=h, init=str(root / "models/general/model.keras"),
                                  data=[genki_root, smile_root], sample_seed=77,
                                  not_smiling=not_smiling)
        return script.build_house(args)

    plain, more, next_more = house(1), house(1, 132), house(2, 132)
    assert (plain.labels == 1).sum() == 84 and (plain.labels == 0).sum() == 66
    assert (more.labels == 1).sum() == 84 and (more.labels == 0).sum() == 132
    # the same smiles; the fresh faces a deployed door is scored on share none with its own
    assert set(plain.ids[:84]) == set(more.ids[:84])
    assert not set(more.ids) & set(next_more.ids)
