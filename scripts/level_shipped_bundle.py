#!/usr/bin/env python3
"""Give a converted bundle the geometry stage's levelling step without converting it again.

The tilt study (``reports/tilt/``, ``scripts/tilt_study.py``) adopted levelling a rolled
head's crop after the shipped bundle was converted. Levelling changes no model file: the
classifier, the mesh and the head are the same bytes, and it is one more step of the
geometry stage in ``model.json``. Converting again would re-quantize the classifier
(``happyhouse-convert`` is not byte-reproducible across runs: the same command made a
``.tflite`` with another sha256), so this writes the step from the model's sidecar
(``models/general/geometry.json``, whose ``geometry`` section a new conversion copies), sets
the format version that step needs (4: an older daemon refuses the bundle instead of serving
it unlevelled), renders the model card again (``convert/card.py``, with the card notes) and
seals the manifest. The bundle is then loaded and self-tested as the daemon does.

::

    python scripts/level_shipped_bundle.py                      # daemon/models/default
    python scripts/level_shipped_bundle.py --bundle DIR --model models/general/model.keras
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    from happyhouse.convert.card import model_card
    from happyhouse.daemon.bundle import format_version, load_bundle, sha256_file
    from happyhouse.daemon.bundleschema import MANIFEST_KEY, META_FILE, SEAL_KEY, seal
    from happyhouse.daemon.geometry import GeometrySpec

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", type=Path, default=Path("daemon/models/default"))
    p.add_argument("--model", type=Path, default=Path("models/general/model.keras"))
    args = p.parse_args(argv)
    sidecar = json.loads((args.model.parent / "geometry.json").read_text(encoding="utf-8"))
    wanted = GeometrySpec.from_dict(sidecar["geometry"], "geometry.json")
    meta = json.loads((args.bundle / META_FILE).read_text(encoding="utf-8"))
    served = GeometrySpec.from_dict(meta["geometry"], META_FILE)
    # the step only: every file and number the bundle serves stays what it was
    same = {k: v for k, v in vars(wanted).items() if not k.startswith("level")}
    if same != {k: v for k, v in vars(served).items() if not k.startswith("level")}:
        print(f"{args.model.parent / 'geometry.json'} describes another geometry stage than "
              f"{args.bundle}: convert the model instead", file=sys.stderr)
        return 1
    meta["geometry"] = wanted.to_dict()
    meta["format_version"] = format_version(meta)
    notes = args.model.parent / "card-notes.md"
    card = model_card(meta, notes.read_text(encoding="utf-8") if notes.is_file() else "")
    (args.bundle / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    meta[MANIFEST_KEY] = {name: sha256_file(args.bundle / name) for name in meta[MANIFEST_KEY]}
    meta[SEAL_KEY] = seal(meta)
    staged = args.bundle / (META_FILE + ".new")
    staged.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    os.replace(staged, args.bundle / META_FILE)
    bundle = load_bundle(args.bundle)
    checked = bundle.self_test(bundle.classifier()) + bundle.self_test_geometry(bundle.geometry_stage())
    print(f"{args.bundle}: format {meta['format_version']}, levelled beyond "
          f"{bundle.geometry.level_beyond:g} degrees; self-test passed ({checked} golden vectors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
