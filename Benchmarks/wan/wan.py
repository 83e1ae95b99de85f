#!/usr/bin/env python3
"""Helpers for Benchmarks/wan/run.sh (Python 3 standard library only).

  wan.py rate-bytes RATE                  tc rate (1gbit, 100mbit, 12mbps, ...) -> bytes per second
  wan.py sink HOST PORT                   accept one TCP connection, read to EOF, print "bytes seconds"
  wan.py source HOST PORT SECONDS         connect (retrying for 10 s), send for SECONDS, print "bytes seconds"
  wan.py echo HOST PORT                   accept one TCP connection and echo it back until EOF
  wan.py ping HOST PORT ROUNDS            one-byte round trips to wan.py echo: "median_us p99_us"
  wan.py run-summary LOG TARGET           a ps-server or ps-train log -> key=value figures (one line)
  wan.py report RESULTS TARGET            results.jsonl written by run.sh -> the Markdown tables
"""

import json
import re
import socket
import sys
import time

# tc's units (tc(8), "RATES"): bits per second with SI or IEC prefixes, or bytes per second ("bps").
_RATE_UNITS = {
    "bit": 1 / 8, "kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8, "tbit": 1e12 / 8,
    "kibit": 1024 / 8, "mibit": 1024**2 / 8, "gibit": 1024**3 / 8, "tibit": 1024**4 / 8,
    "bps": 1, "kbps": 1e3, "mbps": 1e6, "gbps": 1e9, "tbps": 1e12,
    "kibps": 1024, "mibps": 1024**2, "gibps": 1024**3, "tibps": 1024**4,
}


def rate_bytes(text):
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([a-z]*)", text.strip().lower())
    if not m or m.group(2) not in _RATE_UNITS:
        raise SystemExit(f"wan.py: cannot read the rate {text!r} (examples: 1gbit, 100mbit, 500kbit)")
    value = float(m.group(1)) * _RATE_UNITS[m.group(2)]
    if value <= 0:
        raise SystemExit(f"wan.py: the rate {text!r} is not positive")
    return int(value)


def sink(host, port):
    with socket.create_server((host, int(port)), reuse_port=False) as listener:
        listener.settimeout(30)
        conn, _ = listener.accept()
        with conn:
            buf = bytearray(1 << 20)
            total = 0
            first = None
            while True:
                n = conn.recv_into(buf)
                if n == 0:
                    break
                if first is None:
                    first = time.monotonic()
                total += n
            seconds = time.monotonic() - first if first is not None else 0.0
            conn.sendall(b"k")  # the source waits for this, so its time covers the whole delivery
    print(f"{total} {seconds:.3f}")


def source(host, port, seconds):
    deadline = time.monotonic() + 10
    while True:
        try:
            conn = socket.create_connection((host, int(port)), timeout=30)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    payload = b"\0" * (1 << 20)
    total = 0
    start = time.monotonic()
    end = start + float(seconds)
    with conn:
        while time.monotonic() < end:
            conn.sendall(payload)
            total += len(payload)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)
        elapsed = time.monotonic() - start
    print(f"{total} {elapsed:.3f}")


def echo(host, port):
    with socket.create_server((host, int(port))) as listener:
        listener.settimeout(30)
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                data = conn.recv(64)
                if not data:
                    break
                conn.sendall(data)


def ping(host, port, rounds):
    """Median and 99th percentile round trip of one byte over TCP, in microseconds (Python's own cost included)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            conn = socket.create_connection((host, int(port)), timeout=30)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    times = []
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(int(rounds)):
            start = time.perf_counter()
            conn.sendall(b"x")
            if not conn.recv(1):
                raise SystemExit("wan.py ping: the echo side closed")
            times.append(time.perf_counter() - start)
    times.sort()
    print(f"{1e6 * times[len(times) // 2]:.0f} {1e6 * times[int(len(times) * 0.99)]:.0f}")


_ACC = re.compile(r"test[_ ]acc(?:uracy)?[ =:]+([0-9.]+)%")
_ELAPSED = re.compile(r"(?:elapsed|trained)[ =]+([0-9.]+) ?s\b")
_EPOCH = re.compile(r"^epoch ([0-9]+)/([0-9]+)")
_SAMPLES_PER_S = re.compile(r"samples/s[ =]+([0-9.]+)|([0-9.]+) samples/s")


def parse_log(path, target):
    """Figures from a ps-server or ps-train log.

    Every line with a test accuracy ("test_acc 97.65%" from ps-server, "test accuracy 97.65%" from ps-train)
    and an elapsed time is an evaluation point; lines starting "epoch N/M" are also the per-epoch record.
    The last line of key=value pairs is the summary.
    """
    evaluations = []  # (elapsed seconds, accuracy percent, epoch or None)
    epochs = []  # (epoch, samples/s, accuracy percent, elapsed seconds)
    summary = {}
    with open(path, errors="replace") as log:
        for raw in log:
            line = raw.strip().split("\r")[-1]
            acc, elapsed = _ACC.search(line), _ELAPSED.search(line)
            epoch = _EPOCH.match(line)
            if acc and elapsed:
                evaluations.append((float(elapsed.group(1)), float(acc.group(1)),
                                    int(epoch.group(1)) if epoch else None))
            if epoch and acc:
                rate = _SAMPLES_PER_S.search(line)
                rate = (rate.group(1) or rate.group(2)) if rate else None
                epochs.append((int(epoch.group(1)), float(rate) if rate else None, float(acc.group(1)),
                               float(elapsed.group(1)) if elapsed else None))
            pairs = [p.split("=", 1) for p in line.split() if "=" in p]
            if len(pairs) >= 4 and len(pairs) == len(line.split()):
                summary = dict(pairs)
    reached = next(((t, e) for t, a, e in evaluations if a >= target), None)
    # The binaries' own figure, where they print it: training seconds, evaluation time left out.
    own = summary.get("seconds_to_target")
    if own is not None:
        time_to_target = float(own) if re.fullmatch(r"[0-9.]+", own) else None
    else:
        time_to_target = reached[0] if reached else None
    return {
        "time_to_target": time_to_target,
        "epoch_at_target": reached[1] if reached else None,
        "evaluations": len(evaluations),
        "epochs": epochs,
        "summary": summary,
    }


def run_summary(path, target):
    figures = parse_log(path, float(target))
    s = figures["summary"]
    out = {
        "time_to_target": figures["time_to_target"],
        "samples_per_second": s.get("samples_per_second"),
        "test_accuracy": s.get("test_accuracy"),
        "samples": s.get("samples"),
        "bytes_in": s.get("bytes_in"),
        "bytes_out": s.get("bytes_out"),
    }
    print(" ".join(f"{k}={'-' if v is None else v}" for k, v in out.items()))


def _num(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _fmt(value, digits=0, suffix=""):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def _ratio(a, b, digits=2):
    return f"{a / b:.{digits}f}" if a is not None and b else "-"


def report(results_path, target):
    """results.tsv: one JSON object per line, written by run.sh."""
    target = float(target)
    with open(results_path) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    train = next((r for r in runs if r["kind"] == "ps-train"), None)
    base = parse_log(train["log"], target) if train else None
    base_sps = _num(base["summary"].get("samples_per_second")) if base else None
    base_ttt = base["time_to_target"] if base else None
    t = f"{target:g}%"
    print(f"| link (server, each way) | configuration | shards | workers | samples/s | time to {t} | final accuracy "
          f"| bytes/sample, veth counters | bytes/sample, 1500-byte frames | bytes/sample, busiest link "
          f"| veth ÷ protocol bytes | samples/s ÷ ps-train | time to {t} ÷ ps-train |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    per_epoch = []
    for r in runs:
        figures = parse_log(r["log"], target)
        s = figures["summary"]
        sps = _num(s.get("samples_per_second"))
        ttt = figures["time_to_target"]
        acc = _num(s.get("test_accuracy"))
        acc_text = "-" if acc is None else f"{100 * acc:.2f}%"
        shards = int(r.get("shards") or 0)
        name = "ps-train" if r["kind"] == "ps-train" else r["config"] + (f" ({shards} shards)" if shards else "")
        per_epoch.append((r["link"], name, r["workers"], figures["epochs"]))
        if r["kind"] == "ps-train":
            print(f"| none (1 process, root namespace) | ps-train | - | - | {_fmt(sps)} | {_fmt(ttt, 1, ' s')} "
                  f"| {acc_text} | - | - | - | - | 1.00 | {'1.00' if ttt else '-'} |")
            continue
        samples = _num(s.get("samples"))
        # Every link that carries the session's parameters: the server's, and each shard's.
        server_veth = _num(r.get("rx_bytes")) + _num(r.get("tx_bytes"))
        shard_links = [_num(b) for b in (r.get("shard_link_bytes") or "").split()]
        veth = server_veth + sum(shard_links)
        frames = _num(r.get("frame_bytes"))
        shard_frames = _num(r.get("shard_frame_bytes")) if shards else 0
        frames = frames + shard_frames if frames is not None and shard_frames is not None else None
        busiest = max([server_veth] + shard_links)
        per_sample = veth / samples if samples else None
        per_frame_sample = frames / samples if frames is not None and samples else None
        per_busiest = busiest / samples if samples else None
        # The protocol's own count: the server's frames, and the shards' (summary keys of a sharded session).
        proto_parts = [_num(s.get(k)) for k in ("bytes_in", "bytes_out")]
        if shards:
            proto_parts += [_num(s.get(k)) for k in ("shard_bytes_in", "shard_bytes_out")]
        proto = sum(proto_parts) if all(p is not None for p in proto_parts) else None
        print(f"| {r['link']} | {r['config']} | {shards or '-'} | {r['workers']} | {_fmt(sps)} | {_fmt(ttt, 1, ' s')} | {acc_text} "
              f"| {_fmt(per_sample)} | {_fmt(per_frame_sample)} | {_fmt(per_busiest)} | {_ratio(veth, proto, 3)} "
              f"| {_ratio(sps, base_sps)} | {_ratio(ttt, base_ttt)} |")
    churn = []
    for r in runs:
        if r["kind"] != "ps-server":
            continue
        s = parse_log(r["log"], target)["summary"]
        joins, leaves = _num(s.get("joins")), _num(s.get("leaves"))
        if (leaves or 0) > 0 or (joins or 0) > int(r["workers"]):
            shards = int(r.get("shards") or 0)
            what = r["config"] + (f" ({shards} shards)" if shards else "")
            churn.append(f"- {r['link']}, {what}: workers left and rejoined during the session "
                         f"(joins={s.get('joins')} leaves={s.get('leaves')} requeued={s.get('requeued', '-')}"
                         f"{' expired=' + s['expired'] if 'expired' in s else ''}); see why in {r['log']}")
    if churn:
        print()
        print("Churn (from ps-server's summary line; with --workers N and no faults there should be N joins and no leaves):")
        print()
        print("\n".join(churn))
    print()
    print("Per epoch (samples/s, test accuracy, elapsed):")
    print()
    print("| link | run | workers | epoch | samples/s | test accuracy | elapsed |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for link, name, workers, epochs in per_epoch:
        for epoch, sps, acc, elapsed in epochs:
            print(f"| {link} | {name} | {workers} | {epoch} | {_fmt(sps)} | {acc:.2f}% | {_fmt(elapsed, 1, ' s')} |")


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    command, args = argv[1], argv[2:]
    if command == "rate-bytes" and len(args) == 1:
        print(rate_bytes(args[0]))
    elif command == "sink" and len(args) == 2:
        sink(*args)
    elif command == "source" and len(args) == 3:
        source(*args)
    elif command == "echo" and len(args) == 2:
        echo(*args)
    elif command == "ping" and len(args) == 3:
        ping(*args)
    elif command == "run-summary" and len(args) == 2:
        run_summary(*args)
    elif command == "report" and len(args) == 2:
        report(*args)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
