"""Proves an export equal to its Keras model: Keras, SavedModel and TFLite on the same images.

Usage (from the repository root):

    python -m export.verify --saved_model=/exports/coco_s --tflite=/exports/coco_s.tflite \\
        --images=/data/val_images/ --batch_sizes=1,3
    python -m export.verify --saved_model=/exports/coco_s --synthetic=2 --sizes=65x97,129

The Keras reference is the export's model rebuilt from its metadata with the SavedModel's
weights (or `--checkpoint`'s, to check an export against its training checkpoint), run eagerly
with the padding and post-processing redone outside the exported graph. Every signature of the
SavedModel and of the TFLite model runs on every batch; the tool prints, per runtime,
signature and output, the largest and the mean absolute error against Keras, and exits with
status 1 when any output is out of tolerance.

Tolerances (float32 exports):

- float outputs (logits, heatmaps, offsets, scores, probabilities): the largest absolute
  error of a batch must not exceed `rtol` (1e-4) times the largest magnitude of the Keras
  output on that batch, `max|a - b| <= rtol * max|a|`: a relative error of the whole tensor,
  which, unlike a per-element relative error, does not explode on values near zero, and,
  unlike an absolute floor, stays tight on outputs of any scale.
- integer outputs (`panoptic`, `semantic`, `instance`, `instance_panoptic_ids`): identical.
  A mismatch is reported with the number of differing pixels that sit on a near tie of the
  Keras logits (top-2 margin within the float tolerance), where float rounding alone can flip
  the argmax; those count as mismatches all the same.

Quantized TFLite models (float16, dynamic, int8) are not held to these tolerances: their
errors are reported, with the panoptic quality (PQ) of the quantized `panoptic` output against
the Keras float one (`keras_axial.evaluation.PanopticQuality`), or the top-1 agreement of a
classifier; `--min_pq` / `--min_top1_agreement` turn those into pass/fail checks.
"""

import dataclasses

import numpy as np
from absl import app
from absl import flags

from export import _cli

INTEGER_OUTPUTS = ("panoptic", "semantic", "instance", "instance_panoptic_ids")


@dataclasses.dataclass
class OutputCheck:
    """Errors of one output of one signature of one runtime, over every batch."""

    runtime: str
    signature: str
    output: str
    exact: bool
    checked: bool = True
    max_abs_error: float = 0.0
    sum_abs_error: float = 0.0
    count: int = 0
    max_reference: float = 0.0
    worst_ratio: float = 0.0
    mismatches: int = 0
    near_ties: int = 0
    failures: list = dataclasses.field(default_factory=list)

    @property
    def mean_abs_error(self):
        return self.sum_abs_error / max(self.count, 1)

    @property
    def passed(self):
        return not self.failures


@dataclasses.dataclass
class VerifyReport:
    """What `verify_export` found."""

    checks: list
    batches: list
    quantization: str = None
    panoptic_quality: dict = None
    top1_agreement: float = None
    threshold_failures: list = dataclasses.field(default_factory=list)

    @property
    def passed(self):
        return all(c.passed for c in self.checks if c.checked) and not self.threshold_failures

    def format(self, rtol):
        header = (f"{'runtime':<11} {'signature':<16} {'output':<22} {'max|err|':>10} "
                  f"{'mean|err|':>10} {'max|ref|':>10} {'check':>28}  status")
        lines = [header, "-" * len(header)]
        for c in self.checks:
            if c.exact:
                check = f"identical ({c.mismatches} differ)"
                if c.near_ties:
                    check = f"identical ({c.mismatches} differ, {c.near_ties} near ties)"
            else:
                check = f"rel {c.worst_ratio:.2e} <= {rtol:.0e}"
            status = "PASS" if c.passed else "FAIL"
            if not c.checked:
                check = (f"{c.mismatches} differ" if c.exact else f"rel {c.worst_ratio:.2e}")
                status = "report"
            lines.append(f"{c.runtime:<11} {c.signature:<16} {c.output:<22} "
                         f"{c.max_abs_error:>10.3e} {c.mean_abs_error:>10.3e} "
                         f"{c.max_reference:>10.3e} {check:>28}  {status}")
        if self.quantization not in (None, "none"):
            lines.append(f"TFLite quantization: {self.quantization} (reported, not held to the "
                         "float32 tolerances)")
        if self.panoptic_quality is not None:
            pq = self.panoptic_quality
            lines.append(f"PQ of the quantized TFLite panoptic output against Keras float32: "
                         f"PQ {pq['pq']:.4f}, SQ {pq['sq']:.4f}, RQ {pq['rq']:.4f} "
                         f"({pq['num_images']} images)")
        if self.top1_agreement is not None:
            lines.append(f"Top-1 agreement of the quantized TFLite classifier with Keras "
                         f"float32: {self.top1_agreement:.4f}")
        for failure in self.threshold_failures:
            lines.append(f"FAIL: {failure}")
        lines.append(f"Batches: {', '.join(self.batches)}")
        for c in self.checks:
            for failure in c.failures[:3]:
                lines.append(f"FAIL {c.runtime}/{c.signature}/{c.output}: {failure}")
        lines.append("RESULT: " + ("PASS" if self.passed else "FAIL"))
        return "\n".join(lines)


def _near_ties(logits, mask, tolerance):
    top2 = np.sort(logits, axis=-1)[..., -2:]
    return int(np.count_nonzero(mask & ((top2[..., 1] - top2[..., 0]) <= tolerance)))


def _compare(check, reference, actual, rtol, label, logits=None):
    if reference.shape != actual.shape:
        check.failures.append(f"{label}: shape {actual.shape}, expected {reference.shape}")
        return
    difference = np.abs(reference.astype(np.float64) - actual.astype(np.float64))
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    max_error = float(difference.max()) if difference.size else 0.0
    check.max_abs_error = max(check.max_abs_error, max_error)
    check.sum_abs_error += float(difference.sum())
    check.count += difference.size
    check.max_reference = max(check.max_reference, scale)
    if check.exact:
        mismatch = difference > 0
        count = int(np.count_nonzero(mismatch))
        check.mismatches += count
        if count and logits is not None and mismatch.ndim == 3:
            check.near_ties += _near_ties(
                logits, mismatch, rtol * float(np.max(np.abs(logits)))
            )
        if count and check.checked:
            check.failures.append(f"{label}: {count} of {difference.size} values differ")
        return
    ratio = max_error / scale if scale > 0 else (0.0 if max_error == 0 else np.inf)
    check.worst_ratio = max(check.worst_ratio, ratio)
    if check.checked and not max_error <= rtol * scale:
        check.failures.append(
            f"{label}: max|err| {max_error:.3e} > {rtol:.0e} x max|ref| {scale:.3e}"
        )


def verify_export(
    saved_model,
    images,
    *,
    tflite=None,
    batch_sizes=(1, 3),
    checkpoint=None,
    rtol=1e-4,
    min_pq=None,
    min_top1_agreement=None,
    keras_model=None,
):
    """Runs Keras, the SavedModel and (optionally) the TFLite model and compares them.

    Args:
        saved_model: the SavedModel folder written by `export.saved_model` (or an
            `export.runners.SavedModelRunner` of it, to reuse a loaded one).
        images: `(name, uint8 [H, W, 3])` pairs (`export.images`).
        tflite: a `.tflite` file written by `export.tflite`. Defaults to `None`.
        batch_sizes: every image size runs at each of these batch sizes. Defaults to
            `(1, 3)`.
        checkpoint: take the Keras reference's weights from this checkpoint instead of the
            SavedModel. Defaults to `None`.
        rtol: float tolerance, relative to the largest Keras magnitude. Defaults to `1e-4`.
        min_pq: fail when a quantized TFLite model's PQ against Keras is lower. Defaults to
            `None` (report only).
        min_top1_agreement: same for a quantized classifier's top-1 agreement. Defaults to
            `None`.
        keras_model: use this Keras model as the reference instead of rebuilding it.
            Defaults to `None`.

    Returns:
        A `VerifyReport`.
    """
    from export import building
    from export import images as images_lib
    from export import metadata as metadata_lib
    from export import runners

    if isinstance(saved_model, runners.SavedModelRunner):
        saved, saved_model = saved_model, saved_model.path
    else:
        saved = runners.SavedModelRunner(saved_model)
    metadata = metadata_lib.read_metadata(saved_model)
    if keras_model is None:
        keras_model = building.rebuild_model(metadata, saved.model_weights)
        if checkpoint is not None:
            building.restore_weights(keras_model, checkpoint)
    reference = runners.KerasRunner(keras_model, metadata)
    compared = [saved]
    quantization = None
    if tflite is not None:
        tflite_metadata = read_tflite_metadata(tflite)
        quantization = tflite_metadata.get("tflite", {}).get("quantization", "none")
        compared.append(runners.TFLiteRunner(tflite))
    quantized = quantization not in (None, "none")

    checks = {}
    batches_run = []
    panoptic_quality = top1 = None
    if quantized and metadata["task"] == "panoptic":
        from keras_axial.evaluation import PanopticQuality

        dataset = metadata["dataset"]
        panoptic_quality = PanopticQuality(
            num_classes=metadata["model"]["num_classes"],
            thing_class_ids=dataset["thing_class_ids"],
            label_divisor=dataset["label_divisor"],
            ignore_label=dataset["ignore_label"],
        )
    agreement = []

    for names, batch in images_lib.batches(images, batch_sizes):
        label = f"{batch.shape[0]}x{batch.shape[1]}x{batch.shape[2]}"
        batches_run.append(label)
        inputs = {"serving_default": batch, "network": batch.astype(np.float32)}
        network = reference("network", inputs["network"])
        expected = {"network": network,
                    "serving_default": reference.serve_from_network(network)}
        logits = expected["network"].get("semantic_logits")
        for runner in compared:
            is_quantized = quantized and runner.name == "tflite"
            for signature in ("network", "serving_default"):
                actual = runner(signature, inputs[signature])
                missing = sorted(set(expected[signature]) - set(actual))
                for output in sorted(expected[signature]):
                    key = (runner.name, signature, output)
                    if key not in checks:
                        checks[key] = OutputCheck(
                            runner.name, signature, output, exact=output in INTEGER_OUTPUTS,
                            checked=not is_quantized,
                        )
                    if output in missing:
                        checks[key].failures.append(f"{label}: output missing")
                        continue
                    _compare(checks[key], expected[signature][output], actual[output], rtol,
                             label, logits=logits if output in ("panoptic", "semantic")
                             else None)
                if is_quantized and signature == "serving_default":
                    if panoptic_quality is not None:
                        panoptic_quality.update_state(
                            expected[signature]["panoptic"], actual["panoptic"]
                        )
                    if metadata["task"] == "classifier":
                        agreement.extend(
                            np.argmax(expected[signature]["probabilities"], -1)
                            == np.argmax(actual["probabilities"], -1)
                        )

    report = VerifyReport(list(checks.values()), batches_run, quantization)
    if panoptic_quality is not None:
        result = panoptic_quality.result()["All"]
        report.panoptic_quality = {
            "pq": float(result["pq"]), "sq": float(result["sq"]), "rq": float(result["rq"]),
            "num_images": panoptic_quality.num_images,
        }
        if min_pq is not None and report.panoptic_quality["pq"] < min_pq:
            report.threshold_failures.append(
                f"quantized PQ {report.panoptic_quality['pq']:.4f} < --min_pq {min_pq}"
            )
    if agreement:
        report.top1_agreement = float(np.mean(agreement))
        if min_top1_agreement is not None and report.top1_agreement < min_top1_agreement:
            report.threshold_failures.append(
                f"top-1 agreement {report.top1_agreement:.4f} < --min_top1_agreement "
                f"{min_top1_agreement}"
            )
    return report


def read_tflite_metadata(path):
    """The keras_axial metadata of a `.tflite` file: embedded, else its `.json` sidecar."""
    import json

    from export import metadata as metadata_lib
    from export import tflite_ops

    embedded = tflite_ops.read_embedded_metadata(path)
    if embedded is not None:
        return json.loads(embedded.decode("utf-8"))
    return metadata_lib.read_metadata(path)


# -- command line --------------------------------------------------------------------------------

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    flags.DEFINE_string("saved_model", None, "SavedModel folder (export.saved_model).",
                        flag_values=flag_values)
    flags.DEFINE_string("tflite", None, ".tflite file (export.tflite).",
                        flag_values=flag_values)
    flags.DEFINE_string("images", None, "Comma-separated image files, folders, globs.",
                        flag_values=flag_values)
    flags.DEFINE_integer("synthetic", 0, "Use this many synthetic images per --sizes entry "
                         "(instead of or beside --images).", flag_values=flag_values)
    flags.DEFINE_string("sizes", "65x97,129", "Sizes of the synthetic images.",
                        flag_values=flag_values)
    flags.DEFINE_string("batch_sizes", "1,3", "Batch sizes every image size runs at.",
                        flag_values=flag_values)
    flags.DEFINE_string("checkpoint", None, "Keras reference weights from this checkpoint "
                        "instead of the SavedModel's.", flag_values=flag_values)
    flags.DEFINE_float("rtol", 1e-4, "Float tolerance: max|err| <= rtol * max|keras output|.",
                       flag_values=flag_values)
    flags.DEFINE_float("min_pq", None, "Quantized TFLite: fail below this PQ against Keras.",
                       flag_values=flag_values)
    flags.DEFINE_float("min_top1_agreement", None, "Quantized TFLite classifier: fail below "
                       "this top-1 agreement with Keras.", flag_values=flag_values)


def run(flag_values=FLAGS):
    from export import images as images_lib

    if not flag_values.saved_model:
        raise app.UsageError("--saved_model is required.")
    images = []
    if flag_values.images:
        images.extend(images_lib.load_images(flag_values.images))
    if flag_values.synthetic:
        for size in images_lib.parse_sizes(flag_values.sizes):
            images.extend(images_lib.synthetic_images(flag_values.synthetic, size))
    if not images:
        raise app.UsageError("Pass --images=<files, folders, globs> and/or --synthetic=N.")
    try:
        batch_sizes = [int(v) for v in flag_values.batch_sizes.split(",") if v.strip()]
    except ValueError:
        batch_sizes = []
    if not batch_sizes or min(batch_sizes) < 1:
        raise app.UsageError(
            f"--batch_sizes must be positive ints, e.g. 1,3. Received: "
            f"{flag_values.batch_sizes!r}"
        )
    return verify_export(
        flag_values.saved_model,
        images,
        tflite=flag_values.tflite,
        batch_sizes=batch_sizes,
        checkpoint=flag_values.checkpoint,
        rtol=flag_values.rtol,
        min_pq=flag_values.min_pq,
        min_top1_agreement=flag_values.min_top1_agreement,
    )


def main(argv):
    return _cli.run_main(
        argv, run, lambda report: (report.format(FLAGS.rtol), 0 if report.passed else 1)
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
