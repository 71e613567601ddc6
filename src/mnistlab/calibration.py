"""Calibrated confidence: temperature scaling fitted on held-out data, and the expected calibration error (NumPy).

Temperature scaling (Guo et al., ICML 2017) divides a model's logits by one number T fitted to minimise the
negative log-likelihood of held-out labels. softmax(z / T) equals p ** (1 / T) renormalised, so it works from
the probabilities alone (any model, any inference engine): T > 1 softens an overconfident model, T < 1
sharpens an underconfident one (label smoothing makes `fast` and `best` underconfident). The ranking of the
classes never changes, so accuracy does not either.
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15
T_RANGE = (0.05, 20.0)


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities (N, C) as the model would give them with its logits divided by `temperature`."""
    p = np.asarray(proba, np.float64)
    if temperature == 1.0:
        return p.astype(np.float32)
    with np.errstate(divide="ignore"):
        z = np.log(p) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def nll(proba: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels."""
    p = np.asarray(proba, np.float64)[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(p, 1e-12, 1.0))))


def fit_temperature(proba: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the NLL of `labels` (held-out data) under the scaled `proba`."""
    labels = np.asarray(labels, np.int64)
    if len(labels) == 0:
        return 1.0
    lo, hi = np.log(T_RANGE[0]), np.log(T_RANGE[1])
    loss = lambda log_t: nll(apply_temperature(proba, float(np.exp(log_t))), labels)  # noqa: E731
    # The NLL is convex in 1/T: golden-section search on log T finds its minimum to 1e-4.
    g = (np.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = loss(c), loss(d)
    while b - a > 1e-4:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = loss(d)
    return round(float(np.exp((a + b) / 2)), 4)


def reliability(proba: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per equal-width confidence bin: its range, count, mean confidence and accuracy (empty bins left out)."""
    p = np.asarray(proba)
    conf, correct = p.max(axis=1), p.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        sel = which == b
        if sel.any():
            rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": int(sel.sum()),
                         "confidence": float(conf[sel].mean()), "accuracy": float(correct[sel].mean())})
    return rows


def expected_calibration_error(proba: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over equal-width bins."""
    rows = reliability(proba, labels, bins)
    n = sum(r["count"] for r in rows)
    return float(sum(r["count"] * abs(r["confidence"] - r["accuracy"]) for r in rows) / n) if n else 0.0
