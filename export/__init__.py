"""Export of keras_axial models: SavedModel and TFLite with the post-processing inside.

Run from the repository root (this package is not installed):

- `python -m export.saved_model`: a SavedModel with `serving_default` (uint8 images, any batch
  and size -> panoptic maps, instance scores, center heatmap; classifiers: probabilities) and
  `network` (float32 images -> raw predictions), post-processing settings baked in and listed
  in `assets/keras_axial_export.json`. Loading it needs TensorFlow only.
- `python -m export.tflite`: the same two signatures in one `.tflite` file, TFLite builtin ops
  only, optionally quantized (float16, dynamic range, int8).
- `python -m export.verify`: Keras, SavedModel and TFLite on the same images, per-output
  errors, non-zero exit status on a mismatch.

Modules: `serving` (the exported `tf.Module`s, input checks, padding), `metadata`, `building`
(models from the registry, gin and checkpoints), `runners` (one call for the three runtimes),
`tflite_ops` (operator listing and allow-list, embedded metadata), `images`.
"""
