"""Quick trials of candidate `fast` architectures against `cnn`, timed in the same process.

    .venv/bin/python benchmarks/fast_trials.py '{"kind":"cnn","epochs":3,"batch":128,"seed":1}' '{"kind":"F0","epochs":3,"batch":256,"seed":1,"peak":4e-3,"ls":0.1}'

Each argument is one JSON trial; prints one JSON line per trial (fit seconds, test accuracy). The kinds are
the rows of the table in docs/benchmarks.md ("fast"). Never part of the test suite.
"""
import os, sys, time, json
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np, keras
from keras import layers
import mnistlab
(xtr, ytr), (xte, yte) = mnistlab.load_data(data_dir=os.environ.get("MNISTLAB_DATA"))
xtr = xtr[..., None].astype("float32") / 255; xte = xte[..., None].astype("float32") / 255
Ytr = np.eye(10, dtype="float32")[ytr]; Yte = np.eye(10, dtype="float32")[yte]

def build(kind, steps, epochs, peak=3e-3, ls=0.0, spe=1):
    if kind == "cnn":
        m = keras.Sequential([keras.Input((28,28,1)), layers.Conv2D(32,3,activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(64,3,activation="relu"), layers.MaxPooling2D(2), layers.Flatten(), layers.Dropout(0.5), layers.Dense(10, activation="softmax")])
        m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"]); return m
    if kind == "A":
        body = [layers.Conv2D(32,5,strides=2,padding="same",activation="relu"), layers.Conv2D(48,3,activation="relu"), layers.MaxPooling2D(2), layers.Flatten()]
    elif kind == "B":
        body = [layers.Conv2D(32,5,strides=2,padding="same",activation="relu"), layers.Conv2D(64,3,activation="relu"), layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(128, activation="relu")]
    elif kind == "C":
        body = [layers.Conv2D(24,5,strides=2,padding="same",activation="relu"), layers.Conv2D(48,3,strides=2, activation="relu"), layers.Flatten(), layers.Dense(128, activation="relu")]
    elif kind == "D":
        body = [layers.Conv2D(32,5,strides=2,padding="same",activation="relu"), layers.Conv2D(64,3,strides=2, activation="relu"), layers.Flatten(), layers.Dense(128, activation="relu")]
    elif kind == "E":
        body = [layers.Conv2D(32,5,strides=2,padding="same",activation="relu"), layers.Conv2D(64,3,strides=2, padding="same", activation="relu"), layers.Flatten(), layers.Dense(256, activation="relu")]
    elif kind == "F":
        body = [layers.Conv2D(32,3,padding="same",activation="relu"), layers.MaxPooling2D(2), layers.Conv2D(64,3,padding="same",activation="relu"), layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(128, activation="relu")]
    elif kind == "F0":
        body = [layers.Conv2D(32,5,strides=2,padding="same",activation="relu"), layers.Conv2D(64,3,strides=2, activation="relu"), layers.Flatten(), layers.Dense(128, activation="relu")]
    elif kind == "F1":
        body = [layers.Conv2D(32,3,strides=2,padding="same",activation="relu"), layers.Conv2D(64,3,strides=2, activation="relu"), layers.Flatten(), layers.Dense(128, activation="relu")]
    elif kind == "F2":
        body = [layers.Conv2D(32,4,strides=2,padding="same",activation="relu"), layers.Conv2D(64,3,strides=2, activation="relu"), layers.Flatten(), layers.Dense(128, activation="relu")]
    m = keras.Sequential([keras.Input((28,28,1)), *body, layers.Dense(10, activation="softmax")])
    total = steps * epochs
    sched = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=total - total // 10, warmup_target=peak, warmup_steps=total // 10)
    m.compile(optimizer=keras.optimizers.Adam(sched), loss=keras.losses.CategoricalCrossentropy(label_smoothing=ls), metrics=["accuracy"], steps_per_execution=spe)
    return m

def run(kind, epochs, batch, seed, **kw):
    keras.utils.set_random_seed(seed)
    steps = -(-len(xtr) // batch)
    m = build(kind, steps, epochs, **kw)
    t = time.perf_counter()
    if kind == "cnn":
        m.fit(xtr, Ytr, batch_size=128, epochs=3, validation_split=0.1, verbose=0)
    else:
        m.fit(xtr, Ytr, batch_size=batch, epochs=epochs, verbose=0)
    s = time.perf_counter() - t
    acc = float((m.predict(xte, batch_size=2048, verbose=0).argmax(1) == yte).mean())
    print(json.dumps({"kind": kind, "epochs": epochs, "batch": batch, "seed": seed, **kw, "s": round(s,1), "acc": acc, "params": m.count_params()}), flush=True)

for spec in sys.argv[1:]:
    d = json.loads(spec); run(**d)
