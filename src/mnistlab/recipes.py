"""Every named recipe in one place: a literal Keras model, its compile settings and its fit settings.

A recipe's `build(steps_per_epoch, epochs)` returns a compiled model; the two arguments let a recipe size
a learning-rate schedule to the run. Keras is imported inside the builders so that importing this module
(e.g. for `mnistlab --help`) stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    fit_kwargs: dict[str, Any] = field(default_factory=dict)


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
    ]
}

DEFAULT_RECIPE = "cnn"


def get_recipe(name: str) -> Recipe:
    """Return the recipe called `name`, or raise UsageError listing the known ones."""
    try:
        return RECIPES[name]
    except KeyError:
        raise UsageError(f"unknown recipe {name!r}; choose one of: {', '.join(sorted(RECIPES))}") from None
