"""scripts/geometry_alignment_study.py: its alignments do what the study's verdict relies on.

The study (reports/README.md, "geometry-alignment") concludes that how the mesh's points are
normalised is not what limits the geometry head. That reading needs the Procrustes alignment
to take out exactly rotation, scale and position (in 3D too, never by a mirror), and the
mirrored training faces to be true mirror images (each point swapped with its own partner).
"""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def study(study_script):
    return study_script("geometry_alignment_study.py")


def _rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _symmetric_face(rng):
    """A 468-point face, symmetric in x, with points 33 and 263 as a pair (the eye corners)."""
    order = rng.permutation(468)
    order = order[(order != 33) & (order != 263)]
    pairs = [(33, 263)] + [(int(a), int(b)) for a, b in zip(order[:230:2], order[1:230:2])]
    face = np.zeros((468, 3))
    face[33] = [-1.0, 0.0, 0.0]
    face[263] = [1.0, 0.0, 0.0]
    for a, b in pairs[1:]:
        face[a] = [rng.uniform(0.1, 1.5), rng.uniform(-2, 1), rng.uniform(-0.5, 0.5)]
        face[b] = face[a] * [-1, 1, 1]
    for i in order[230:]:  # the rest lie on the midline
        face[i] = [0.0, rng.uniform(-2, 1), rng.uniform(-0.5, 0.5)]
    partner = np.arange(468)
    for a, b in pairs:
        partner[a], partner[b] = b, a
    return face, partner


def test_procrustes_takes_out_rotation_scale_and_position_in_3d(study):
    rng = np.random.default_rng(0)
    face, _ = _symmetric_face(rng)
    seen = np.stack([2.0 + 30.0 * rng.uniform(0.5, 2.0) * face @ _rotation(rng).T + rng.normal(size=3)
                     for _ in range(6)])
    ref = study.mean_shape(seen, 3)
    assert np.isclose(np.linalg.norm(ref), 1.0) and np.allclose(ref.mean(0), 0.0)
    aligned = study.procrustes(seen, ref, 3)
    assert aligned.shape == (6, 468 * 3)
    assert np.allclose(aligned, aligned[0], atol=1e-9)  # one shape, however it was seen
    # a mirrored face is another shape: Procrustes must not reflect it onto the original
    lopsided = face + np.where(np.arange(468)[:, None] % 3 == 0, [0.3, 0.1, 0.0], 0.0)
    twisted = np.stack([lopsided, lopsided * [-1, 1, 1]])
    out = study.procrustes(twisted, study.mean_shape(twisted[:1], 3), 3)
    assert not np.allclose(out[0], out[1], atol=1e-3)


def test_mirrored_faces_swap_each_point_with_its_own_partner(study):
    rng = np.random.default_rng(1)
    face, partner = _symmetric_face(rng)
    # seen turned and tilted: the mean shape comes out in an arbitrary frame
    seen = np.stack([face @ _rotation(rng).T + rng.normal(scale=0.001, size=face.shape) for _ in range(5)])
    order = study.mirror_order(study.mean_shape(seen, 3))
    assert np.array_equal(order, partner)
    assert np.array_equal(order[order], np.arange(468))
    assert np.array_equal(study.mirrored(study.mirrored(seen, order), order), seen)
    # a level face's mirror image is the face itself
    assert np.allclose(study.mirrored(face[None], order)[0], face)
