"""One call, three runtimes: the Keras model, the SavedModel and the TFLite model of an export.

Every runner is called as `runner(signature, images) -> {output name: numpy array}` with
`signature` `"serving_default"` (uint8 images) or `"network"` (float32 images), so that
`export.verify` and `benchmarks/export_latency.py` treat them alike.
"""

import numpy as np

SIGNATURES = ("serving_default", "network")


def _check_signature(signature, available):
    if signature not in available:
        raise ValueError(
            f"Unknown signature {signature!r}. This export has: {sorted(available)}."
        )


class SavedModelRunner:
    """Runs a SavedModel's signatures (TensorFlow only).

    Args:
        path: the SavedModel folder.
    """

    name = "savedmodel"

    def __init__(self, path):
        import tensorflow as tf

        self._tf = tf
        self.path = path
        self.loaded = tf.saved_model.load(str(path))
        self.signatures = dict(self.loaded.signatures)

    @property
    def model_weights(self):
        """The exported model's variables in `model.weights` order."""
        return [variable.numpy() for variable in self.loaded.model_weights]

    def __call__(self, signature, images):
        _check_signature(signature, self.signatures)
        outputs = self.signatures[signature](images=self._tf.constant(images))
        return {name: value.numpy() for name, value in outputs.items()}


class TFLiteRunner:
    """Runs a `.tflite` file's signatures with LiteRT (`ai_edge_litert`).

    The batch, height and width of the signature inputs are dynamic (-1 in the input's
    `shape_signature`): each call resizes the input tensor to the images' shape and
    re-allocates the interpreter's tensors.

    Args:
        path: the `.tflite` file.
        num_threads: CPU threads. Defaults to `None` (LiteRT's default).
    """

    name = "tflite"

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        self.signatures = {
            key: self.interpreter.get_signature_runner(key)
            for key in self.interpreter.get_signature_list()
        }

    def __call__(self, signature, images):
        _check_signature(signature, self.signatures)
        runner = self.signatures[signature]
        expected = runner.get_input_details()["images"]
        images = np.ascontiguousarray(images)
        # The TFLite runtime has no in-graph assertions, and the signature runner would resize
        # any dimension (channels too): check the contract here.
        if images.dtype != expected["dtype"] or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(
                f"Signature {signature!r} expects {np.dtype(expected['dtype']).name} images of "
                f"shape [batch, height, width, 3]. Received {images.dtype} {images.shape}."
            )
        # The signature runner resizes the input tensor (resize_tensor_input) to this batch,
        # height and width and re-allocates before invoking.
        outputs = runner(images=images)
        return {name: np.array(value) for name, value in outputs.items()}


class KerasRunner:
    """Runs the Keras model of an export eagerly, with the export's padding and
    post-processing re-done in NumPy / `keras_axial`, independently of the exported graph.

    Args:
        model: the Keras model.
        metadata: the export's metadata (`export.metadata`): task, padding rule and
            post-processing settings.
    """

    name = "keras"

    def __init__(self, model, metadata):
        self.model = model
        self.task = metadata["task"]
        self.padding = metadata["input"]["network"]["padding"]
        self.postprocessing = metadata["postprocessing"]
        self.signatures = SIGNATURES

    def padded_size(self, length):
        """The size `length` pixels are padded to (the export's rule)."""
        if self.padding is None:
            return length
        multiple, minimum = self.padding["multiple"], self.padding["minimum"]
        return max(minimum, -(-(length - 1) // multiple) * multiple + 1)

    def _network(self, images):
        import keras

        images = np.asarray(images, np.float32)
        _, height, width, _ = images.shape
        if self.task == "classifier":
            logits = self.model(images, training=False)
            return {"logits": keras.ops.convert_to_numpy(logits).astype(np.float32)}
        pad_height = self.padded_size(height) - height
        pad_width = self.padded_size(width) - width
        padded = np.pad(images, ((0, 0), (0, pad_height), (0, pad_width), (0, 0)),
                        constant_values=self.padding["pad_value"])
        outputs = self.model(padded, training=False)
        return {
            key: keras.ops.convert_to_numpy(outputs[key])[:, :height, :width].astype(np.float32)
            for key in ("semantic_logits", "center_heatmap", "offsets")
        }

    def __call__(self, signature, images):
        _check_signature(signature, self.signatures)
        if signature == "network":
            return self._network(images)
        if np.asarray(images).dtype != np.uint8:
            raise TypeError(f"serving_default takes uint8 images. Received {images.dtype}.")
        return self.serve_from_network(self._network(np.asarray(images).astype(np.float32)))

    def serve_from_network(self, outputs):
        """`serving_default`'s outputs from `network`'s outputs on the same images."""
        if self.task == "classifier":
            logits = outputs["logits"].astype(np.float64)
            exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
            return {"probabilities": (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)}
        import keras

        from keras_axial.postprocessing import panoptic_deeplab_postprocess

        result = panoptic_deeplab_postprocess(
            outputs["semantic_logits"], outputs["center_heatmap"], outputs["offsets"],
            **self.postprocessing,
        )
        result = {key: keras.ops.convert_to_numpy(value) for key, value in result.items()}
        result["center_heatmap"] = outputs["center_heatmap"]
        return result
