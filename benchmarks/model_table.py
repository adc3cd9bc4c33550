"""Parameters and M-Adds of every registered model beside the paper's numbers.

    python benchmarks/model_table.py [--json PATH] [--models NAME ...] [--check]

Counts every registered variant at the paper's input size: classifiers at 224x224 (1000
classes); Axial-DeepLab on COCO (133 classes, 1025x1025) and Cityscapes (19 classes, 1025x2049),
plus the span ablation of T7 (Axial-DeepLab-L, spans 5 to 65). Parameters are trainable weights,
M-Adds follow `keras_axial.utils.count_madds` (convolutions, dense layers and the attention's
algorithmic cost; one image). `--json` writes a list of rows `{"model", "input_size", "params",
"madds", ...}`; `--check` exits with status 1 when a variant with paper numbers is outside the
issue's tolerances (classifiers 5% params / 10% M-Adds, Axial-DeepLab 3% / 5%).
"""

import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from keras_axial import models  # noqa: E402
from keras_axial.utils import atomic_write, count_madds, count_params  # noqa: E402

# (params, M-Adds) relative tolerances per task, from the issues.
TOLERANCES = {"classifier": (0.05, 0.10), "panoptic": (0.03, 0.05)}


def _rows_for(name):
    """(label, input_size, overrides, reference or None) for one registered model."""
    variant = models.get_variant(name)
    if not variant.references:
        return [(variant.task, variant.default_input_size, {}, None)]
    rows = []
    for reference in variant.references:
        overrides = dict(reference.overrides)
        overrides["num_classes"] = reference.num_classes
        rows.append((reference.table, reference.input_size, overrides, reference))
    return rows


def measure(names):
    rows = []
    for name in names:
        task = models.get_variant(name).task
        cache = {}
        for label, input_size, overrides, reference in _rows_for(name):
            key = tuple(sorted(overrides.items()))
            if key not in cache:
                keras.backend.clear_session()
                cache.clear()
                cache[key] = models.get_model(name, **overrides)
            model = cache[key]
            params = count_params(model)
            madds = count_madds(model, (1, *input_size, 3))
            row = {
                "model": name,
                "input_size": list(input_size),
                "params": params,
                "madds": madds,
                "table": label,
                "overrides": overrides,
            }
            if reference is not None:
                row.update(
                    paper_params=reference.params,
                    paper_madds=reference.madds,
                    params_error=params / reference.params - 1,
                    madds_error=madds / reference.madds - 1,
                    within_tolerance=(
                        abs(params / reference.params - 1) <= TOLERANCES[task][0]
                        and abs(madds / reference.madds - 1) <= TOLERANCES[task][1]
                    ),
                )
            rows.append(row)
            print(_format_row(row), flush=True)
    return rows


def _format_row(row):
    size = "x".join(str(d) for d in row["input_size"])
    text = (
        f"{row['model']:22s} {row['table']:34s} {size:>10s} "
        f"{row['params'] / 1e6:9.2f}M {row['madds'] / 1e9:9.2f}B"
    )
    if "paper_params" in row:
        text += (
            f"   paper {row['paper_params'] / 1e6:7.1f}M {row['paper_madds'] / 1e9:8.1f}B"
            f"   ({row['params_error']:+6.1%}, {row['madds_error']:+6.1%})"
            f"{'' if row['within_tolerance'] else '  OUT OF TOLERANCE'}"
        )
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=pathlib.Path, help="write the rows to this JSON file")
    parser.add_argument("--models", nargs="+", default=None,
                        help="registered names to count (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a variant is outside the paper tolerances")
    args = parser.parse_args(argv)
    names = args.models or models.list_models()
    for name in names:
        models.get_variant(name)  # unknown names fail before any model is built
    print(f"{'model':22s} {'paper row':34s} {'input':>10s} {'params':>10s} {'M-Adds':>10s}"
          "   paper params / M-Adds   (difference)")
    rows = measure(names)
    if args.json is not None:
        with atomic_write(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
        print(f"wrote {len(rows)} rows to {args.json}")
    failures = [row for row in rows if row.get("within_tolerance") is False]
    if args.check and failures:
        print(f"{len(failures)} row(s) out of tolerance", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
