"""Evaluation during and after training: PQ / SQ / RQ and mIoU, or top-1 / top-5 accuracy.

The model runs in TensorFlow (optionally XLA-compiled, with post-processing in the same graph);
the metrics are the package's NumPy streaming metrics (`keras_axial.evaluation`), so the
numbers logged while training are the ones `python -m keras_axial.evaluate` reports.
"""

import numpy as np
import tensorflow as tf


def make_panoptic_predict_fn(model, dataset_spec, postprocess_options=None, jit_compile=False):
    """A compiled `images -> post-processed predictions` function for panoptic models.

    Args:
        model: an Axial-DeepLab model returning `semantic_logits`, `center_heatmap`, `offsets`.
        dataset_spec: the `DatasetSpec` (thing classes, label divisor, ignore label).
        postprocess_options: extra `panoptic_deeplab_postprocess` arguments
            (`center_threshold`, `nms_kernel`, `keep_k_centers`, `stuff_area_limit`; default
            `None`: its defaults).
        jit_compile: compile model and post-processing with XLA (default `False`).

    Returns:
        `fn(images, image_size=None) -> dict` of numpy arrays (`panoptic`, `semantic`,
        `instance`, ...). With `image_size` (int `[B, 2]`, the sizes before evaluation
        padding), the network's outputs are cropped to the largest of them before
        post-processing, so that padding takes no part in it (stuff areas, centers, votes):
        with batch 1 the predictions are those of the unpadded image, as the exported
        SavedModel computes them; the maps returned have the cropped size.
    """
    from keras_axial.postprocessing import panoptic_deeplab_postprocess

    options = dict(postprocess_options or {})

    def predict(images, image_size):
        outputs = model(images, training=False)
        if image_size is not None:
            height = tf.reduce_max(image_size[:, 0])
            width = tf.reduce_max(image_size[:, 1])
            outputs = {name: value[:, :height, :width] for name, value in outputs.items()}
        return panoptic_deeplab_postprocess(
            outputs["semantic_logits"],
            outputs["center_heatmap"],
            outputs["offsets"],
            thing_class_ids=list(dataset_spec.thing_class_ids),
            label_divisor=dataset_spec.label_divisor,
            void_label=dataset_spec.ignore_label,
            **options,
        )

    compiled = tf.function(predict, jit_compile=jit_compile, reduce_retracing=True)

    def run(images, image_size=None):
        if image_size is not None:
            image_size = tf.convert_to_tensor(image_size, tf.int32)
        return {name: np.asarray(value) for name, value in compiled(images, image_size).items()}

    return run


def _to_uint8_images(images):
    return np.clip(np.asarray(images, np.float32), 0, 255).astype(np.uint8)


def evaluate_panoptic(
    model,
    dataset,
    dataset_spec,
    *,
    postprocess_options=None,
    max_batches=None,
    num_images=3,
    jit_compile=False,
    predict_fn=None,
):
    """Runs a panoptic model over an evaluation dataset and scores it.

    Args:
        model: the Axial-DeepLab model.
        dataset: finite `tf.data.Dataset` of `(images, targets)` whose targets carry
            `"panoptic"` (and `"semantic"`), as the data pipelines build for evaluation.
        dataset_spec: the `DatasetSpec`.
        postprocess_options: see `make_panoptic_predict_fn` (default `None`).
        max_batches: stop after this many batches (default `None`: the whole dataset).
        num_images: how many `image | prediction | ground truth` panels to return for
            TensorBoard (default 3).
        jit_compile: XLA-compile the prediction (default `False`).
        predict_fn: a ready `make_panoptic_predict_fn` result to reuse (default `None`).

    Returns:
        `(metrics, images)`: `metrics` with `pq`, `sq`, `rq`, `pq_things`, `pq_stuff`, `miou`
        (fractions) and `num_images`; `images` a dict `{"panoptic_<i>": uint8 [1, H, 3W, 3]}`
        of `image | prediction | ground truth` panels.
    """
    from keras_axial.evaluation import PanopticQuality, SemanticMeanIoU
    from keras_axial.visualization import panoptic_colors

    predict_fn = predict_fn or make_panoptic_predict_fn(
        model, dataset_spec, postprocess_options, jit_compile
    )
    panoptic_quality = PanopticQuality(
        dataset_spec.num_classes,
        dataset_spec.thing_class_ids,
        dataset_spec.label_divisor,
        dataset_spec.ignore_label,
    )
    mean_iou = SemanticMeanIoU(dataset_spec.num_classes, ignore_label=dataset_spec.ignore_label)
    panels = []
    for index, (images, targets) in enumerate(dataset):
        if max_batches is not None and index >= max_batches:
            break
        if "panoptic" not in targets:
            raise ValueError(
                "The evaluation dataset must carry targets['panoptic'] (build it for "
                f"evaluation). Received target keys: {sorted(targets)}"
            )
        sizes = np.asarray(targets["image_size"]) if "image_size" in targets else None
        predictions = predict_fn(images, sizes)
        # Predictions are cropped to the batch's largest image (see make_panoptic_predict_fn).
        height, width = predictions["panoptic"].shape[1:3]
        truth = np.asarray(targets["panoptic"])[:, :height, :width]
        panoptic_quality.update_state(truth, predictions["panoptic"])
        semantic_truth = (
            np.asarray(targets["semantic"])[:, :height, :width]
            if "semantic" in targets
            else truth // dataset_spec.label_divisor
        )
        mean_iou.update_state(semantic_truth, predictions["semantic"])
        for position, (image, predicted, expected) in enumerate(
            zip(_to_uint8_images(images)[:, :height, :width], predictions["panoptic"], truth)
        ):
            if len(panels) >= num_images:
                break
            if sizes is not None:  # drop the evaluation padding
                rows, columns = (int(v) for v in sizes[position][:2])
                image = image[:rows, :columns]
                predicted, expected = predicted[:rows, :columns], expected[:rows, :columns]
            panels.append(
                np.concatenate(
                    [
                        image,
                        panoptic_colors(predicted, dataset_spec),
                        panoptic_colors(expected, dataset_spec),
                    ],
                    axis=1,
                )
            )
    if panoptic_quality.num_images == 0:
        raise ValueError("The evaluation dataset is empty: no image was evaluated.")
    # Images differ in size: one summary per image.
    images = {f"panoptic_{index}": panel[None] for index, panel in enumerate(panels)}
    return panoptic_metrics(panoptic_quality, mean_iou), images


def panoptic_metrics(panoptic_quality, mean_iou):
    """The flat dict of fractions evaluations report, from the two streaming metrics."""
    result = panoptic_quality.result()
    metrics = {
        "pq": result["All"]["pq"],
        "sq": result["All"]["sq"],
        "rq": result["All"]["rq"],
        "pq_things": result["Things"]["pq"],
        "pq_stuff": result["Stuff"]["pq"],
        "miou": mean_iou.result()["miou"],
        "num_images": panoptic_quality.num_images,
    }
    return {name: float(value) for name, value in metrics.items()}


def evaluate_classification(model, dataset, *, max_batches=None, jit_compile=False):
    """Top-1 / top-5 accuracy of a classifier over a finite `(images, labels)` dataset.

    Returns:
        `(metrics, {})` with `top1`, `top5` (fractions) and `num_images`.
    """
    predict = tf.function(
        lambda images: model(images, training=False), jit_compile=jit_compile, reduce_retracing=True
    )
    correct_top1 = correct_top5 = total = 0
    for index, (images, labels) in enumerate(dataset):
        if max_batches is not None and index >= max_batches:
            break
        logits = np.asarray(predict(images))
        labels = np.asarray(labels).reshape(-1)
        k = min(5, logits.shape[-1])
        top = np.argsort(-logits, axis=-1)[:, :k]
        correct_top1 += int((top[:, 0] == labels).sum())
        correct_top5 += int((top == labels[:, None]).any(axis=-1).sum())
        total += labels.size
    if total == 0:
        raise ValueError("The evaluation dataset is empty: no image was evaluated.")
    return {"top1": correct_top1 / total, "top5": correct_top5 / total, "num_images": total}, {}
