"""Augmentation layers Keras lacks, for benchmarks/robust_trials.py: random stroke width, elastic warps, slant.

They were tried in `best` against other writers' digits and not kept (docs/benchmarks.md "Augmentation for other
writers"), so they live beside the trials rather than in the package. Importing this module registers them, so
that the trials' saved models load in safe mode (`mnistlab.runs.load_model`). Idle at inference, like Keras'
own augmentation layers.

- `RandomStrokeWidth`: other writers' pens are thinner and bolder than MNIST's (a tablet's 1-pixel trace, a felt
  marker). Keras has rotation, shear, zoom and blur layers but nothing that changes a stroke's width, which is a
  grey-level morphology (a 3x3 maximum or minimum filter) blended in by a random amount per image.
- `RandomElasticWarp`: the smooth random warp of Simard, Steinkraus & Platt (ICDAR 2003), the augmentation that
  gave MNIST its best convolutional results. Keras' RandomElasticTransform cannot make it on a 28x28 digit: it
  ties the field's smoothness to its strength (sigma 0.05 x 28 x scale px, with scale capped at 1), so its
  fields are pixel noise at this size, and (Keras 3.15, TensorFlow backend) it draws the x and y fields from the
  same seed, so every pixel moves along the diagonal.
- `RandomSlant`: Keras' RandomShear along x (other writers slant more, and both ways), in a form that can be
  saved and loaded: RandomShear's own config (Keras 3.15) stores its factor as (-f, f), which its constructor
  then refuses, so a saved model holding one does not load.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnistlab.backend import import_keras

keras = import_keras()


@keras.saving.register_keras_serializable(package="mnistlab")
class RandomStrokeWidth(keras.layers.Layer):
    """While training, make each image's strokes bolder or thinner by a random amount up to `factor`.

    For an amount a drawn uniformly from [-factor, factor]: a > 0 blends a of the way to a 3x3 grey dilation
    (a maximum filter: every stroke about 2 px wider at a = 1), a < 0 |a| of the way to a 3x3 grey erosion
    (thinner; a 1-2 px stroke fades). Inputs are (N, H, W, C) images with ink bright, as MNIST's.
    """

    def __init__(self, factor: float = 0.5, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not 0.0 <= float(factor) <= 1.0:
            raise ValueError(f"factor must be in [0, 1], not {factor!r}")
        self.factor = float(factor)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, images: Any, training: bool = False) -> Any:
        if not training or self.factor == 0.0:
            return images
        ops = keras.ops
        amount = keras.random.uniform((ops.shape(images)[0], 1, 1, 1), -self.factor, self.factor,
                                      seed=self.seed_generator, dtype=images.dtype)
        bolder = ops.max_pool(images, 3, strides=1, padding="same")
        thinner = -ops.max_pool(-images, 3, strides=1, padding="same")
        return ops.where(amount > 0, images + amount * (bolder - images), images - amount * (thinner - images))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}


@keras.saving.register_keras_serializable(package="mnistlab")
class RandomElasticWarp(keras.layers.Layer):
    """While training, warp a `rate` share of the images by a smooth random displacement field.

    The field is white noise blurred by a Gaussian of `smoothness` px, rescaled so that a pixel moves by
    `magnitude` px (standard deviation) at most (each image draws its own strength up to that); bilinear
    resampling, zero outside. Inputs (N, H, W, 1).
    """

    def __init__(self, magnitude: float = 1.5, smoothness: float = 4.0, rate: float = 0.5, seed: int | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        if magnitude < 0 or smoothness <= 0 or not 0 <= rate <= 1:
            raise ValueError("magnitude >= 0, smoothness > 0 and rate in [0, 1] required")
        self.magnitude, self.smoothness, self.rate, self.seed = float(magnitude), float(smoothness), float(rate), seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        radius = int(round(2.5 * self.smoothness))
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / self.smoothness) ** 2)
        self._taps = (taps / taps.sum()).astype("float32")
        # White noise of unit variance blurred by a normalised 2-D Gaussian keeps sum(kernel^2) of its variance.
        self._gain = float(1.0 / np.sqrt((np.outer(self._taps, self._taps) ** 2).sum()))

    def call(self, images: Any, training: bool = False) -> Any:
        if not training or self.magnitude == 0.0 or self.rate == 0.0:
            return images
        ops = keras.ops
        n, h, w = ops.shape(images)[0], images.shape[1], images.shape[2]
        noise = keras.random.normal((n, h, w, 2), seed=self.seed_generator, dtype=images.dtype)
        k = ops.convert_to_tensor(self._taps, dtype=images.dtype)
        field = ops.depthwise_conv(noise, ops.tile(ops.reshape(k, (-1, 1, 1, 1)), (1, 1, 2, 1)), padding="same")
        field = ops.depthwise_conv(field, ops.tile(ops.reshape(k, (1, -1, 1, 1)), (1, 1, 2, 1)), padding="same")
        strength = keras.random.uniform((n, 1, 1, 1), 0.0, self.magnitude, seed=self.seed_generator, dtype=images.dtype)
        applied = ops.cast(keras.random.uniform((n, 1, 1, 1), seed=self.seed_generator) < self.rate, images.dtype)
        field = field * (self._gain * strength * applied)
        rows = ops.reshape(ops.arange(h, dtype=images.dtype), (1, h, 1)) + field[..., 0]
        cols = ops.reshape(ops.arange(w, dtype=images.dtype), (1, 1, w)) + field[..., 1]
        return _bilinear(images[..., 0], rows, cols)[..., None]

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "magnitude": self.magnitude, "smoothness": self.smoothness,
                "rate": self.rate, "seed": self.seed}


def _bilinear(images: Any, rows: Any, cols: Any) -> Any:
    """images (N, H, W) sampled at (rows, cols) (N, H, W) bilinearly, 0 outside.

    Hand-written: keras.ops.image.map_coordinates needs every dimension's size when the graph is built (on the
    TensorFlow backend it fails for a batch of unknown size), and has no batched 2-D form.
    """
    ops = keras.ops
    n, h, w = ops.shape(images)[0], images.shape[1], images.shape[2]
    flat = ops.reshape(images, (-1,))
    base = ops.reshape(ops.arange(n, dtype="int32") * (h * w), (-1, 1, 1))
    r0, c0 = ops.floor(rows), ops.floor(cols)
    out = 0.0
    for dr in (0, 1):
        for dc in (0, 1):
            r, c = r0 + dr, c0 + dc
            weight = (1.0 - ops.abs(rows - r)) * (1.0 - ops.abs(cols - c))
            inside = (r >= 0) & (r <= h - 1) & (c >= 0) & (c <= w - 1)
            ri = ops.cast(ops.clip(r, 0, h - 1), "int32")
            ci = ops.cast(ops.clip(c, 0, w - 1), "int32")
            value = ops.take(flat, base + ri * w + ci)
            out = out + ops.where(inside, weight * value, 0.0)
    return out


@keras.saving.register_keras_serializable(package="mnistlab")
class RandomSlant(keras.layers.RandomShear):
    """While training, shear each image along x by up to `factor` of its width, either way (Keras' RandomShear)."""

    def __init__(self, factor: float = 0.25, **kwargs: Any):
        kwargs.pop("x_factor", None)
        kwargs.pop("y_factor", None)
        super().__init__(x_factor=float(factor), y_factor=0.0, **kwargs)
        self.factor = float(factor)

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("x_factor", None)
        config.pop("y_factor", None)
        return {**config, "factor": self.factor}
