"""The tutorial recipes are reproduced literally: layers, parameter counts, optimizer, loss, fit settings."""

from __future__ import annotations

import pytest

from mnistlab.errors import UsageError
from mnistlab.recipes import DEFAULT_RECIPE, RECIPES, get_recipe


def _layers(model):
    return [(type(layer).__name__, layer.get_config()) for layer in model.layers]


def test_mlp_matches_tutorial():
    r = get_recipe("mlp")
    model = r.build(100, r.epochs)
    assert model.input_shape == (None, 784)
    dense = [(c["units"], c["activation"]) for t, c in _layers(model) if t == "Dense"]
    assert dense == [(128, "relu"), (64, "relu"), (10, "softmax")]
    assert model.count_params() == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    assert type(model.optimizer).__name__ == "Adam"
    assert model.loss == "sparse_categorical_crossentropy"
    assert (r.epochs, r.batch_size, r.one_hot, r.validation) == (10, 32, False, "test")


def test_dense512_matches_tutorial():
    r = get_recipe("dense512")
    model = r.build(100, r.epochs)
    dense = [(c["units"], c["activation"]) for t, c in _layers(model) if t == "Dense"]
    assert dense == [(512, "relu"), (10, "softmax")]
    assert model.count_params() == 407_050
    assert type(model.optimizer).__name__ == "RMSprop"
    assert model.loss == "categorical_crossentropy"
    assert (r.epochs, r.batch_size, r.one_hot, r.validation) == (5, 128, True, None)


def test_cnn_matches_tutorial():
    r = get_recipe("cnn")
    model = r.build(100, r.epochs)
    assert model.input_shape == (None, 28, 28, 1)
    kinds = [t for t, _ in _layers(model)]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense"]
    convs = [(c["filters"], tuple(c["kernel_size"]), c["activation"]) for t, c in _layers(model) if t == "Conv2D"]
    assert convs == [(32, (3, 3), "relu"), (64, (3, 3), "relu")]
    assert [c["rate"] for t, c in _layers(model) if t == "Dropout"] == [0.5]
    assert model.count_params() == 34_826  # the figure keras-io's mnist_convnet prints
    assert type(model.optimizer).__name__ == "Adam"
    assert model.loss == "categorical_crossentropy"
    assert (r.epochs, r.batch_size, r.one_hot, r.validation) == (3, 128, True, 0.1)


def test_default_recipe_is_cnn():
    assert DEFAULT_RECIPE == "cnn"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_builds_a_10_class_softmax(name):
    r = get_recipe(name)
    model = r.build(10, r.epochs)
    assert model.output_shape == (None, 10)
    assert tuple(model.input_shape[1:]) == r.input_shape


def test_unknown_recipe_lists_the_known_ones():
    with pytest.raises(UsageError, match=r"unknown recipe 'nope'; choose one of: .*cnn.*mlp"):
        get_recipe("nope")
