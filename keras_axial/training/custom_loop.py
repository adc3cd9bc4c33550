"""The training loop used under `MultiWorkerMirroredStrategy`, where Keras 3's `model.fit` fails.

Why not `model.fit`: in Keras 3.15 `fit` breaks under `MultiWorkerMirroredStrategy` in two
places (keras-team/keras#20585, tensorflow/tensorflow#72388): its symbolic build calls
`strategy.reduce("MEAN", batch, axis=None)` on the first distributed input batch, which fails
on multi-worker `PerReplica` values, and its per-step metric reduction calls
`strategy.reduce("MEAN", value, axis=0)` on scalars ("Invalid reduction dimension 0 for input
with 0 dimensions"). Both live in private trainer code, so patching them would tie the package
to Keras internals that change between releases.

What this loop keeps from `fit`: the per-replica step is the model's own `train_step` (so
`compute_loss`, loss scaling for distribution, the optimizer's gradient all-reduce, metric
tracking and mixed-precision loss scaling are exactly those of `fit`); callbacks run through a
`keras.callbacks.CallbackList` with the same hooks in the same order (so checkpoints, the NaN
guard, TensorBoard summaries, evaluation and the Keras progress bar behave the same); and the
step's metrics are averaged over replicas with `strategy.reduce(MEAN, axis=None)`, which for
equal per-replica batches equals the metric of the global batch.
"""

import keras
import tensorflow as tf


def make_train_function(model, strategy, jit_compile=False):
    """`train_function(iterator) -> logs`: one distributed `model.train_step` per call.

    Args:
        model: a compiled, built `keras.Model` created under `strategy.scope()`.
        strategy: the `tf.distribute.Strategy`.
        jit_compile: compile the step with XLA (default `False`).

    Returns:
        A `tf.function` taking a distributed iterator and returning a dict of scalar tensors,
        identical on every worker.
    """

    def step(data):
        return model.train_step(data)

    def train_function(iterator):
        outputs = strategy.run(step, args=(next(iterator),))
        return {
            name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
            for name, value in outputs.items()
        }

    return tf.function(train_function, jit_compile=jit_compile, reduce_retracing=True)


def build_for_training(model, strategy, distributed_iterator):
    """Creates the model's, metrics' and optimizer's variables before the first step.

    `model.fit` does this with a symbolic pass over the first batch; the custom loop does the
    same on the spec of one local replica's batch (no data is consumed).
    """
    batch = tf.nest.map_structure(
        lambda spec: keras.KerasTensor(spec.shape, dtype=spec.dtype.name),
        local_element_spec(distributed_iterator.element_spec),
    )
    with strategy.scope():
        # The same symbolic build `fit` runs; there is no public equivalent in Keras 3.15.
        model._symbolic_build(data_batch=batch)  # noqa: SLF001
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)


def local_element_spec(element_spec):
    """The `TensorSpec`s of one replica's batch within a distributed element spec."""

    def local(spec):
        # PerReplicaSpec (several local replicas) holds one TensorSpec per replica.
        if type(spec).__name__ == "PerReplicaSpec":
            return spec._value_specs[0]  # noqa: SLF001
        return spec

    return tf.nest.map_structure(local, element_spec)


def fit_custom_loop(
    model,
    strategy,
    distributed_dataset,
    *,
    epochs,
    steps_per_epoch,
    initial_epoch=0,
    callbacks=None,
    verbose="auto",
    jit_compile=False,
):
    """Trains like `model.fit(dataset, epochs, steps_per_epoch, initial_epoch, callbacks)`.

    Args:
        model: compiled model created under `strategy.scope()`.
        strategy: any `tf.distribute.Strategy` (the loop is written for
            `MultiWorkerMirroredStrategy` but works under all of them).
        distributed_dataset: from `strategy.distribute_datasets_from_function`; infinite.
        epochs: index of the last epoch + 1, as in `fit`.
        steps_per_epoch: steps per epoch.
        initial_epoch: first epoch index (default 0).
        callbacks: list of `keras.callbacks.Callback` (default `None`).
        verbose: 0 (silent), 1 or `"auto"` (progress bar), 2 (one line per epoch); default
            `"auto"`.
        jit_compile: XLA-compile the step (default `False`).

    Returns:
        The `keras.callbacks.History` of the run.
    """
    callbacks = keras.callbacks.CallbackList(
        callbacks,
        add_history=True,
        add_progbar=verbose != 0,
        verbose=verbose,
        epochs=epochs,
        steps=steps_per_epoch,
        model=model,
    )
    iterator = iter(distributed_dataset)
    build_for_training(model, strategy, iterator)
    train_function = make_train_function(model, strategy, jit_compile=jit_compile)

    model.stop_training = False
    callbacks.on_train_begin()
    logs = {}
    epoch_logs = {}
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callbacks.on_epoch_begin(epoch)
        for batch in range(steps_per_epoch):
            callbacks.on_train_batch_begin(batch)
            logs = {name: float(value) for name, value in train_function(iterator).items()}
            callbacks.on_train_batch_end(batch, logs)
            if model.stop_training:
                break
        epoch_logs = dict(logs)
        callbacks.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    callbacks.on_train_end(logs=epoch_logs)
    return model.history
