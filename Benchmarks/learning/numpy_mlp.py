#!/usr/bin/env python3
"""NumPy reference for Downpour's learning core: the same 784-128-10 MLP, batch 64, one thread.

Same model (He-normal weights, zero biases, ReLU, softmax cross-entropy), same standardisation
((x/255 - 0.1307) / 0.3081), same optimiser (SGD, Nesterov momentum 0.9, lr 0.05, cosine schedule).
Prints the OpenBLAS kernel numpy's bundled library runs, one line per epoch, and a key=value summary.
Run it through run.sh, which pins OPENBLAS_NUM_THREADS=1.
"""
import argparse
import ctypes
import glob
import gzip
import os
import statistics
import time

import numpy as np


def openblas_kernel():
    """The core name of the OpenBLAS numpy loaded (via threadpoolctl if present, else ctypes)."""
    try:
        import threadpoolctl  # noqa: F401

        for info in threadpoolctl.threadpool_info():
            if info.get("internal_api") == "openblas":
                return info.get("architecture", "unknown")
    except ImportError:
        pass
    libs = os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*")
    for path in glob.glob(libs):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_corename64_", "openblas_get_corename64_", "openblas_get_corename"):
            if hasattr(lib, name):
                function = getattr(lib, name)
                function.restype = ctypes.c_char_p
                return function().decode()
    return "unknown"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def load(directory, images, labels):
    x = read_idx(os.path.join(directory, images + ".gz")).reshape(-1, 784).astype(np.float32)
    x = (x / 255.0 - 0.1307) / 0.3081
    return x.astype(np.float32), read_idx(os.path.join(directory, labels + ".gz")).astype(np.int64)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "Data", "mnist"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()

    print(f"numpy {np.__version__}, OpenBLAS kernel {openblas_kernel()}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}")
    train_x, train_y = load(args.data, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    test_x, test_y = load(args.data, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

    rng = np.random.default_rng(42)
    h, b = args.hidden, args.batch_size
    params = [
        (rng.standard_normal((784, h)) * np.sqrt(2 / 784)).astype(np.float32),
        np.zeros(h, np.float32),
        (rng.standard_normal((h, 10)) * np.sqrt(2 / h)).astype(np.float32),
        np.zeros(10, np.float32),
    ]
    velocity = [np.zeros_like(p) for p in params]
    steps_per_epoch = (len(train_x) + b - 1) // b
    total_steps = args.epochs * steps_per_epoch
    step = 0
    rates, cpu_rates = [], []
    for epoch in range(args.epochs):
        order = np.random.default_rng([42, epoch]).permutation(len(train_x))
        start, cpu_start = time.perf_counter(), time.process_time()
        total_loss = 0.0
        for first in range(0, len(train_x), b):
            idx = order[first : first + b]
            x, y = train_x[idx], train_y[idx]
            n = len(idx)
            w1, b1, w2, b2 = params
            hidden = x @ w1
            hidden += b1
            np.maximum(hidden, 0, out=hidden)
            logits = hidden @ w2
            logits += b2
            logits -= logits.max(axis=1, keepdims=True)
            np.exp(logits, out=logits)
            sums = logits.sum(axis=1, keepdims=True)
            total_loss += float(np.sum(np.log(sums[:, 0]) - np.log(logits[np.arange(n), y])))
            logits /= sums
            logits[np.arange(n), y] -= 1
            logits /= n
            grads = [None, None, hidden.T @ logits, logits.sum(axis=0)]
            dhidden = logits @ w2.T
            dhidden *= hidden > 0
            grads[0] = x.T @ dhidden
            grads[1] = dhidden.sum(axis=0)
            lr = 0.5 * args.lr * (1 + np.cos(np.pi * min(step / total_steps, 1.0)))
            for p, g, v in zip(params, grads, velocity):
                v *= 0.9
                v += g
                p -= lr * (g + 0.9 * v)
            step += 1
        seconds = time.perf_counter() - start
        rates.append(len(train_x) / seconds)
        cpu_rates.append(len(train_x) / (time.process_time() - cpu_start))
        w1, b1, w2, b2 = params
        predictions = (np.maximum(test_x @ w1 + b1, 0) @ w2 + b2).argmax(axis=1)
        accuracy = float((predictions == test_y).mean())
        print(f"epoch {epoch + 1}/{args.epochs}: {rates[-1]:.0f} samples/s, {cpu_rates[-1]:.0f} per CPU-second, "
              f"train loss {total_loss / len(train_x):.4f}, test accuracy {100 * accuracy:.2f}%")
    print(f"model=mlp:{h} epochs={args.epochs} batch_size={b} "
          f"samples_per_second={statistics.median(rates):.0f} "
          f"samples_per_cpu_second={statistics.median(cpu_rates):.0f} test_accuracy={accuracy:.4f}")


if __name__ == "__main__":
    main()
