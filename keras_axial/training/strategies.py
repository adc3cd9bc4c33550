"""`tf.distribute` strategies chosen by name, and explicit global / per-replica batch sizes."""

import json
import os

import tensorflow as tf

STRATEGY_NAMES = ("default", "one_device", "mirrored", "multi_worker", "tpu")


def get_strategy(
    name="default",
    *,
    device=None,
    devices=None,
    tpu_address=None,
    communication="auto",
    num_logical_cpu_devices=None,
):
    """Creates the `tf.distribute.Strategy` an experiment runs under.

    Args:
        name: one of `"default"` (no distribution, the default), `"one_device"`,
            `"mirrored"` (all local GPUs, or `devices`), `"multi_worker"`
            (`MultiWorkerMirroredStrategy`, cluster read from the `TF_CONFIG` environment
            variable) or `"tpu"`.
        device: the device for `"one_device"` (default `None`: the first GPU if any, else
            `"/cpu:0"`).
        devices: device names for `"mirrored"` (default `None`: every local GPU, or every
            logical CPU device when there is no GPU).
        tpu_address: TPU name or `grpc://host:port` address for `"tpu"` (default `None`: the
            TPU of this Cloud TPU VM / Colab runtime).
        communication: collective implementation for `"multi_worker"`: `"auto"` (default),
            `"ring"` or `"nccl"`.
        num_logical_cpu_devices: split the physical CPU into this many logical devices before
            the strategy is created (default `None`: leave it as it is). Lets a CPU-only
            machine run `"mirrored"` with several replicas, which is how the distribution code
            paths are tested without accelerators. Must be called before TensorFlow
            initialises its devices.

    Returns:
        The strategy. `strategy.num_replicas_in_sync` tells how many replicas share one
        global batch.

    Example:
        >>> strategy = get_strategy("mirrored", num_logical_cpu_devices=2)
        >>> strategy.num_replicas_in_sync
        2
    """
    if name not in STRATEGY_NAMES:
        raise ValueError(
            f"Unknown strategy name. Received: name={name!r}; expected one of {STRATEGY_NAMES}."
        )
    if communication not in ("auto", "ring", "nccl"):
        raise ValueError(
            "communication must be 'auto', 'ring' or 'nccl'. "
            f"Received: communication={communication!r}"
        )
    if num_logical_cpu_devices is not None:
        _split_cpu(num_logical_cpu_devices)

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        if device is None:
            device = "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=list(devices))
    if name == "multi_worker":
        _check_tf_config()
        implementation = {
            "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
            "ring": tf.distribute.experimental.CommunicationImplementation.RING,
            "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
        }[communication]
        options = tf.distribute.experimental.CommunicationOptions(implementation=implementation)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    # TPU.
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise RuntimeError(
            f"Could not connect to the TPU at tpu_address={tpu_address!r}: {error}. Pass the "
            "TPU name or grpc://host:port with --tpu (or get_strategy.tpu_address), or choose "
            "another runtime (gin/runtime/)."
        ) from error
    return tf.distribute.TPUStrategy(resolver)


def _split_cpu(count):
    if not isinstance(count, int) or count < 1:
        raise ValueError(
            "num_logical_cpu_devices must be a positive integer. "
            f"Received: num_logical_cpu_devices={count!r}"
        )
    cpu = tf.config.list_physical_devices("CPU")[0]
    existing = tf.config.get_logical_device_configuration(cpu)
    if existing is not None and len(existing) == count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError as error:
        raise RuntimeError(
            f"Cannot split the CPU into num_logical_cpu_devices={count} logical devices: "
            "TensorFlow has already initialised its devices in this process. Create the "
            "strategy before running any TensorFlow op."
        ) from error


def _check_tf_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        # A cluster of one: MultiWorkerMirroredStrategy then behaves like mirrored.
        return
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            "TF_CONFIG must be JSON like {\"cluster\": {\"worker\": [\"host:port\", ...]}, "
            f"\"task\": {{\"type\": \"worker\", \"index\": 0}}}}. Received: TF_CONFIG={raw!r}"
        ) from error
    if not isinstance(workers, list) or not workers:
        raise ValueError(f"TF_CONFIG lists no workers. Received: TF_CONFIG={raw!r}")


def is_chief(strategy=None):
    """Whether this process writes checkpoints, logs and exports.

    Every process is the chief except under a multi-worker strategy, where worker 0 (or the
    `chief` task when `TF_CONFIG` names one) is.

    Args:
        strategy: the strategy (default `None`: the current one).

    Returns:
        `bool`.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def is_chief_from_environment():
    """Whether this process will be the chief, judged from `TF_CONFIG` before any strategy
    exists (worker 0, or the `chief` task; always `True` without `TF_CONFIG`)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    try:
        config = json.loads(raw)
        task_type = config["task"]["type"]
        task_id = int(config["task"]["index"])
        has_chief = "chief" in config["cluster"]
    except (ValueError, KeyError, TypeError):
        return True  # get_strategy reports the malformed TF_CONFIG.
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief)


def is_multi_worker(strategy=None):
    """Whether `strategy` spans several processes (`model.fit` cannot drive it in Keras 3)."""
    strategy = strategy or tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()  # noqa: SLF001 (only public signal)
    )


def resolve_batch_sizes(num_replicas, *, global_batch_size=None, per_replica_batch_size=None):
    """Turns the configured batch size into `(global_batch_size, per_replica_batch_size)`.

    Exactly one of the two must be given, so an experiment says explicitly whether its batch
    size is the paper's global batch (split over replicas) or a per-device batch (multiplied
    by the number of replicas).

    Args:
        num_replicas: `strategy.num_replicas_in_sync`.
        global_batch_size: images per optimizer step over all replicas (default `None`).
        per_replica_batch_size: images per replica per step (default `None`).

    Returns:
        `(global_batch_size, per_replica_batch_size)` as ints.

    Example:
        >>> resolve_batch_sizes(8, global_batch_size=32)
        (32, 4)
    """
    if (global_batch_size is None) == (per_replica_batch_size is None):
        raise ValueError(
            "Set exactly one of global_batch_size and per_replica_batch_size. Received: "
            f"global_batch_size={global_batch_size!r}, "
            f"per_replica_batch_size={per_replica_batch_size!r}"
        )
    if per_replica_batch_size is not None:
        if not isinstance(per_replica_batch_size, int) or per_replica_batch_size < 1:
            raise ValueError(
                "per_replica_batch_size must be a positive integer. "
                f"Received: per_replica_batch_size={per_replica_batch_size!r}"
            )
        return per_replica_batch_size * num_replicas, per_replica_batch_size
    if not isinstance(global_batch_size, int) or global_batch_size < 1:
        raise ValueError(
            "global_batch_size must be a positive integer. "
            f"Received: global_batch_size={global_batch_size!r}"
        )
    if global_batch_size % num_replicas:
        raise ValueError(
            f"global_batch_size={global_batch_size} does not split evenly over {num_replicas} "
            "replicas. Use a multiple of the replica count or set per_replica_batch_size."
        )
    return global_batch_size, global_batch_size // num_replicas
