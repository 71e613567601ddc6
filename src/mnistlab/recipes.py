"""Every named recipe in one place: a literal Keras model, its compile settings and its fit settings.

A recipe's `build(steps_per_epoch, epochs)` returns a compiled model; the two arguments let a recipe size
a learning-rate schedule to the run. Keras is imported inside the builders so that importing this module
(e.g. for `mnistlab --help`) stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .errors import UsageError


@dataclass(frozen=True)
class Recipe:
    """A named model + compile + fit recipe."""

    name: str
    summary: str
    build: Callable[[int, int], Any]  # (steps_per_epoch, epochs) -> compiled keras.Model
    input_shape: tuple[int, ...]  # what the model takes: (784,) flat or (28, 28, 1) image
    epochs: int
    batch_size: int
    one_hot: bool  # categorical cross-entropy on one-hot labels, else sparse labels
    validation: str | float | None  # "test": validate on the test set; a float: validation_split

    @property
    def validation_split(self) -> float:
        """The fraction of the training images held out for validation (0.0 if none are)."""
        return self.validation if isinstance(self.validation, float) else 0.0

    def fitted_part(self, n: int) -> int:
        """How many of `n` training images the recipe fits on: the first ones. Keras' validation_split holds out
        the last part, and everything fitted beside the model (calibration, detector, pair reader) cuts there."""
        return int(n * (1 - self.validation_split))


def _mlp(steps_per_epoch: int, epochs: int):
    import keras
    from keras import layers

    model = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Dense(128, activation="relu"),
            layers.Dense(64, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        name="mlp",
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _dense512(steps_per_epoch: int, epochs: int):
    import keras
    from keras import layers

    model = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Dense(512, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        name="dense512",
    )
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def _cnn(steps_per_epoch: int, epochs: int):
    import keras
    from keras import layers

    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ],
        name="cnn",
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def _warmup_cosine(peak: float, steps_per_epoch: int, epochs: int, warmup: float = 0.1):
    """Linear warm-up to `peak` over the first `warmup` of training, then cosine decay to zero."""
    import keras

    total = max(1, steps_per_epoch * epochs)
    warm = max(1, int(total * warmup))
    return keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(1, total - warm), warmup_target=peak,
                                                  warmup_steps=warm)


def _fast(steps_per_epoch: int, epochs: int):
    return fast_model(steps_per_epoch, epochs, [])


def fast_model(steps_per_epoch: int, epochs: int, augmentation: list):
    """`fast`'s network and training settings with augmentation layers in front (none in `fast` itself)."""
    import keras
    from keras import layers

    # Strided convolutions instead of pooling: the first layer already works at 14x14, so a training
    # image costs about half the arithmetic of `cnn` (see docs/benchmarks.md for the measurements).
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            *augmentation,
            layers.Conv2D(32, kernel_size=5, strides=2, padding="same", activation="relu"),
            layers.Conv2D(64, kernel_size=3, strides=2, activation="relu"),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        name="fast",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(_warmup_cosine(4e-3, steps_per_epoch, epochs)),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
        metrics=["accuracy"],
    )
    return model


def _best(steps_per_epoch: int, epochs: int):
    import keras

    # Rotation, shift and zoom only. Adding pen width, elastic warps, aspect, slant and blur made `best` worse on
    # other writers' development sets (94.8% -> 91.7%) and on MNIST's held-out digits (99.57% -> 99.02%):
    # preprocessing already normalises those, and the augmented digits are unlike what it produces
    # (benchmarks/robust_trials.py, docs/benchmarks.md "Augmentation for other writers").
    augmentation = [
        keras.layers.RandomRotation(10 / 360, fill_mode="constant"),
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
        keras.layers.RandomZoom(0.1, fill_mode="constant"),
    ]
    return best_model(steps_per_epoch, epochs, augmentation)


def best_model(steps_per_epoch: int, epochs: int, augmentation: list):
    """`best`'s network and training settings with the given augmentation layers in front (benchmarks try others)."""
    import keras
    from keras import layers

    def conv(filters: int, kernel: int = 3):
        return [layers.Conv2D(filters, kernel, padding="same", use_bias=False), layers.BatchNormalization(),
                layers.Activation("relu")]

    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            # Augmentation runs inside the compiled graph and only while training.
            *augmentation,
            *conv(32, 5),
            layers.MaxPooling2D(2),
            *conv(64),
            *conv(64),
            layers.MaxPooling2D(2),
            *conv(128),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.3),
            layers.Dense(128, use_bias=False),
            layers.BatchNormalization(),
            layers.Activation("relu"),
            layers.Dropout(0.3),
            layers.Dense(10, activation="softmax"),
        ],
        name="best",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(_warmup_cosine(3e-3, steps_per_epoch, epochs)),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
        metrics=["accuracy"],
    )
    return model


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe(
            name="mlp",
            summary="784-128-64-10 MLP, Adam, 10 epochs, batch 32, validated on the test set each epoch",
            build=_mlp,
            input_shape=(784,),
            epochs=10,
            batch_size=32,
            one_hot=False,
            validation="test",
        ),
        Recipe(
            name="dense512",
            summary="784-512-10 dense network, RMSprop, 5 epochs, batch 128, no validation",
            build=_dense512,
            input_shape=(784,),
            epochs=5,
            batch_size=128,
            one_hot=True,
            validation=None,
        ),
        Recipe(
            name="cnn",
            summary="Conv32-Pool-Conv64-Pool-Dropout-Dense10 convnet, Adam, 3 epochs, batch 128, 10% validation split",
            build=_cnn,
            input_shape=(28, 28, 1),
            epochs=3,
            batch_size=128,
            one_hot=True,
            validation=0.1,
        ),
        Recipe(
            name="fast",
            summary="strided Conv32-Conv64-Dense128 convnet, Adam with warm-up + cosine, label smoothing, "
                    "3 epochs, batch 256, 10% validation split: 99% in about half of cnn's time",
            build=_fast,
            input_shape=(28, 28, 1),
            epochs=3,
            batch_size=256,
            one_hot=True,
            validation=0.1,  # held out to fit the temperature that calibrates its confidence
        ),
        Recipe(
            name="best",
            summary="BatchNorm convnet with in-graph augmentation (rotation, shift, zoom), label smoothing, "
                    "warm-up + cosine, 15 epochs, batch 128, 10% validation split: 99.6%+ test accuracy",
            build=_best,
            input_shape=(28, 28, 1),
            epochs=15,
            batch_size=128,
            one_hot=True,
            validation=0.1,  # held out to fit the temperature that calibrates its confidence
        ),
    ]
}

DEFAULT_RECIPE = "cnn"


def get_recipe(name: str) -> Recipe:
    """Return the recipe called `name`, or raise UsageError listing the known ones."""
    try:
        return RECIPES[name]
    except KeyError:
        raise UsageError(f"unknown recipe {name!r}; choose one of: {', '.join(sorted(RECIPES))}") from None
