"""The three tutorials' own scripts, as published, for reference timings in the same benchmark run.

Only the data loading differs: `keras.datasets.mnist.load_data()` downloads, which this machine cannot,
so the same arrays come from `mnistlab.load_data()`. Run one: `python benchmarks/tutorial_scripts.py cnn`.
Prints one JSON line: {"script", "train_seconds", "test_loss", "test_accuracy"}.
"""

from __future__ import annotations

import json
import sys
import time

import keras
import numpy as np
from keras import layers

import mnistlab


def mlp():
    # "784 -> 128 -> 64 -> 10, Adam, sparse CE, 10 epochs, batch 32, validated on the test set"
    (x_train, y_train), (x_test, y_test) = mnistlab.load_data()
    x_train = x_train.reshape(-1, 784).astype("float32") / 255
    x_test = x_test.reshape(-1, 784).astype("float32") / 255
    model = keras.Sequential([
        keras.Input(shape=(784,)),
        layers.Dense(128, activation="relu"),
        layers.Dense(64, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=10, batch_size=32, validation_data=(x_test, y_test), verbose=2)
    return model, time.perf_counter() - start, x_test, y_test


def dense512():
    # Deep Learning with Python, 2.1: network.fit(train_images, train_labels, epochs=5, batch_size=128)
    (train_images, train_labels), (test_images, test_labels) = mnistlab.load_data()
    train_images = train_images.reshape((60000, 28 * 28)).astype("float32") / 255
    test_images = test_images.reshape((10000, 28 * 28)).astype("float32") / 255
    train_labels = keras.utils.to_categorical(train_labels)
    test_labels = keras.utils.to_categorical(test_labels)
    network = keras.Sequential([keras.Input(shape=(28 * 28,)), layers.Dense(512, activation="relu"),
                                layers.Dense(10, activation="softmax")])
    network.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    network.fit(train_images, train_labels, epochs=5, batch_size=128, verbose=2)
    return network, time.perf_counter() - start, test_images, test_labels


def cnn():
    # keras-io examples/vision/mnist_convnet.py, epochs = 3
    num_classes, input_shape = 10, (28, 28, 1)
    (x_train, y_train), (x_test, y_test) = mnistlab.load_data()
    x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
    x_test = np.expand_dims(x_test.astype("float32") / 255, -1)
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_test = keras.utils.to_categorical(y_test, num_classes)
    model = keras.Sequential([
        keras.Input(shape=input_shape),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=128, epochs=3, validation_split=0.1, verbose=2)
    return model, time.perf_counter() - start, x_test, y_test


if __name__ == "__main__":
    name = sys.argv[1]
    keras.utils.set_random_seed(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    model, seconds, x_test, y_test = {"mlp": mlp, "dense512": dense512, "cnn": cnn}[name]()
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    print(json.dumps({"script": name, "train_seconds": seconds, "test_loss": loss, "test_accuracy": acc}))
