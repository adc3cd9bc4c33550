"""A small, model-agnostic experiment for the training tests, in-process or in a subprocess.

Its data is built so that every strategy sees the same global batch at every step: the
stream of global batches is fixed, and each replica takes its slice of it. A run over any
number of replicas (with synchronized batch norm) is then numerically the single-device run.

As a script: `python toy_experiment.py --strategy=mirrored --model_dir=DIR --output=out.npz`.
"""

import argparse
import json
import os
import sys

import numpy as np

GLOBAL_BATCH = 8
IMAGE_SIZE = 8
NUM_CLASSES = 5


def model_fn(sync_batch_norm=False):
    import keras

    return keras.Sequential(
        [
            keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            # No bias before batch norm: its true gradient is 0, and Adam-style optimizers
            # would turn float noise in it into full-size steps.
            keras.layers.Conv2D(6, 3, use_bias=False, name="conv"),
            keras.layers.BatchNormalization(synchronized=sync_batch_norm, name="bn"),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(NUM_CLASSES, name="classifier"),
        ]
    )


def _examples(count, seed):
    rng = np.random.RandomState(seed)
    images = rng.uniform(0, 255, (count, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
    labels = rng.randint(0, NUM_CLASSES, count).astype(np.int32)
    return images, labels


def train_dataset_fn(input_context, batch_size, seed=0):
    """Per-replica slices of a fixed stream of global batches (`seed` picks the stream).

    `batch_size` is the per-replica batch size, the training loop's contract.
    """
    import tensorflow as tf

    replicas = input_context.num_replicas_in_sync
    local = replicas // input_context.num_input_pipelines
    first = input_context.input_pipeline_id * local
    images, labels = _examples(64, seed % 1000)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).repeat()
    dataset = dataset.batch(batch_size * replicas, drop_remainder=True)

    def slices(images, labels):
        images = tf.reshape(images, [replicas, batch_size, IMAGE_SIZE, IMAGE_SIZE, 3])
        labels = tf.reshape(labels, [replicas, batch_size])
        return tf.data.Dataset.from_tensor_slices(
            (images[first : first + local], labels[first : first + local])
        )

    return dataset.flat_map(slices)


def eval_dataset_fn(input_context, batch_size):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(_examples(16, 99)).batch(batch_size)


def experiment_kwargs(**overrides):
    """Arguments of `train_and_evaluate` for the toy experiment."""
    from keras_axial.training.optimizers import build_optimizer

    kwargs = dict(
        model_fn=model_fn,
        train_dataset_fn=train_dataset_fn,
        eval_dataset_fn=eval_dataset_fn,
        task="classification",
        train_steps=6,
        eval_interval=4,
        checkpoint_interval=3,
        global_batch_size=GLOBAL_BATCH,
        eval_batch_size=4,
        optimizer_fn=lambda learning_rate: build_optimizer(
            "radam", learning_rate, lookahead=True, lookahead_sync_period=2
        ),
        learning_rate_fn=lambda: 0.01,
        verbose=0,
    )
    kwargs.update(overrides)
    return kwargs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", default="default")
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--overrides", default="{}", help="JSON dict of extra arguments.")
    args = parser.parse_args()

    from keras_axial.training.experiment import train_and_evaluate
    from keras_axial.training.strategies import get_strategy

    strategy_kwargs = {"num_logical_cpu_devices": 2} if args.strategy == "mirrored" else {}
    result = train_and_evaluate(
        args.model_dir,
        **experiment_kwargs(
            strategy_fn=lambda: get_strategy(args.strategy, **strategy_kwargs),
            **json.loads(args.overrides),
        ),
    )
    model = result["model"]
    np.savez(
        args.output,
        loss=np.asarray(result["history"]["loss"]),
        step=result["step"],
        replicas=result["num_replicas"],
        **{f"weight_{i}": w for i, w in enumerate(model.get_weights())},
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    sys.exit(main())
