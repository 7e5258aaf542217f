"""``happyhouse-convert``: Keras model -> verified int8 TFLite bundle for the door.

Exit codes:
  0  bundle written and verified (parity, golden self-test)
  1  refused: the int8 model loses more accuracy than --max-drop allows
     (nothing written)
  2  bad input: missing/corrupt model or metadata, data that does not match
     the model input, unwritable output (one line on stderr, nothing written)
  3  bundle written and verified, but no door will arm it: its recorded figures
     (hold-out size, ROC AUC, false opens) are too poor; what is wrong is said on
     standard output (and in --json's "warnings")
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

from happyhouse.daemon.cli_errors import run_main
from happyhouse.daemon.errors import DataError, HappyHouseError, refuse_unless, seed_check
from happyhouse.daemon.evidence import evidence_problems
from happyhouse.daemon.filesafety import a_path
from happyhouse.daemon.runtime import SCORE_KINDS, VIEW_LOGITS

from .parity import DEFAULT_HOLDOUT_FRACTION, DEFAULT_MAX_DROP
from .quantize import DEFAULT_CALIBRATION_SIZE

#: the bundle is written and verified, but its recorded figures are too poor to arm a door
EXIT_UNARMED = 3

log = logging.getLogger("happyhouse.convert")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="happyhouse-convert",
        description="Quantize a trained Keras model to full-integer int8 TFLite, prove on a "
                    "hold-out that it decides like the float model, and write a model bundle "
                    "(model.tflite, model.json, golden.npz, MODEL_CARD.md).",
        epilog="Exit codes:" + __doc__.split("Exit codes:", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", metavar="MODEL", type=a_path, help="trained Keras model (.keras or .h5)")
    parser.add_argument("--calibration", metavar="DATA", action="append", required=True, type=a_path,
                        help="labelled TRAINING data (class folders or course .h5); repeatable")
    parser.add_argument("--out", metavar="DIR", required=True, type=a_path,
                        help="bundle folder to write (an existing one is replaced, so it must "
                             "hold an earlier bundle or nothing)")
    parser.add_argument("--holdout", metavar="DATA", action="append", default=[], type=a_path,
                        help="separate labelled data for the parity proof (default: a seeded "
                             f"stratified {DEFAULT_HOLDOUT_FRACTION:g} split of the calibration "
                             "data, never used for calibration)")
    parser.add_argument("--metadata", metavar="JSON", type=a_path,
                        help="training metadata (default: MODEL's .json or metadata.json beside it)")
    parser.add_argument("--metrics", metavar="JSON", type=a_path,
                        help="training validation metrics (happyhouse-train's metrics.json; "
                             "default: the metadata's own or metrics.json beside it)")
    parser.add_argument("--max-drop", type=float, default=DEFAULT_MAX_DROP, metavar="PP",
                        help="largest int8 accuracy loss allowed, in percentage points "
                             f"(default {DEFAULT_MAX_DROP:g})")
    parser.add_argument("--calibration-size", type=int, default=DEFAULT_CALIBRATION_SIZE,
                        metavar="N", help=f"calibration images (default {DEFAULT_CALIBRATION_SIZE})")
    parser.add_argument("--seed", type=int, default=0, help="seed for the split and sample")
    parser.add_argument("--notes", metavar="FILE", type=a_path,
                        help="markdown added near the top of MODEL_CARD.md")
    parser.add_argument("--no-geometry", action="store_true",
                        help="leave out the geometry stage even if geometry.json (written by "
                             "python -m happyhouse.train.geometry) lies beside the model")
    parser.add_argument("--output", choices=SCORE_KINDS, default=VIEW_LOGITS,
                        help="what the int8 model outputs: view_logits (default; the door "
                             "applies the sigmoid, fine scores near 0 and 1; needs a daemon "
                             "that reads bundle format 3) or probability (the sigmoid in int8, "
                             "256 levels; a bundle older daemons serve)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    return run_main("happyhouse-convert", lambda: _convert(argv))


def _convert(argv: Optional[List[str]]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from .build import Options, convert

    refuse_unless((
        # allowed, not refused: a NaN allowance fails the test instead of letting any drop through
        (0 <= args.max_drop <= 100,
         f"--max-drop must be 0 to 100 percentage points, got {args.max_drop}"),
        (args.calibration_size >= 2,
         f"--calibration-size must be at least 2 (a face of each class), got "
         f"{args.calibration_size}"),
        seed_check("--seed", args.seed),
    ), HappyHouseError)
    notes = ""
    if args.notes:
        try:
            # -sig: a byte-order mark (Notepad's UTF-8) would land mid-card as a stray character
            notes = Path(args.notes).read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            # MODEL_CARD.md is UTF-8: notes saved as Latin-1 or UTF-16 cannot go in as they are
            raise DataError(f"--notes {args.notes} is not UTF-8 text: save it as UTF-8") from None
        except OSError as exc:
            raise DataError(f"--notes {args.notes}: {exc.strerror or exc}") from None
    bundle = convert(Options(
        model=Path(args.model), calibration=[Path(p) for p in args.calibration],
        out=Path(args.out), holdout=[Path(p) for p in args.holdout],
        metadata=Path(args.metadata) if args.metadata else None,
        metrics=Path(args.metrics) if args.metrics else None, max_drop=args.max_drop,
        calibration_size=args.calibration_size, seed=args.seed, notes=notes,
        no_geometry=args.no_geometry, score=args.output))
    parity = bundle.meta["metrics"]["parity"]
    result = {"bundle": str(bundle.path), "sha256": bundle.sha256,
              "size_bytes": bundle.meta["size_bytes"], "threshold": bundle.threshold,
              "parity": {k: parity[k] for k in ("n", "float_accuracy", "int8_accuracy",
                                                "agreement", "max_score_diff", "drop_pp")},
              "warnings": evidence_problems(bundle.meta)}
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        sys.stdout.write(
            f"wrote {bundle.path} ({result['size_bytes']:,} bytes, sha256 {bundle.sha256[:12]}…)\n"
            f"hold-out n={parity['n']}: float {100 * parity['float_accuracy']:.2f}%, int8 "
            f"{100 * parity['int8_accuracy']:.2f}%, agreement {100 * parity['agreement']:.2f}%, "
            f"largest score difference {parity['max_score_diff']:.4f}\n")
        if result["warnings"]:  # said only in --json: the bundle looked fine, then no door armed it
            sys.stdout.write("no door will arm this bundle (its recorded figures are too poor): "
                             + "; ".join(result["warnings"]) + "\n")
    # not 0: `happyhouse-convert ... && remote-install.sh --bundle` went on to a bundle the
    # service then refused; the bundle stays written, to be looked at or measured
    return EXIT_UNARMED if result["warnings"] else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
