#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus, Tools/Fuzz/Corpus/<target>/, from the protocol's own schema.

Every Envelope body is encoded by protoc (`protoc --encode`, from Schemas/Messages), so the seeds are
what any protobuf implementation sends, not what our encoder happens to write. Run it after a schema
change:  python3 Tools/Fuzz/make-corpus.py   (needs protoc: apt-get install protobuf-compiler)
"""
import os
import shutil
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCHEMAS = os.path.join(ROOT, "Schemas", "Messages")
CORPUS = os.path.join(HERE, "Corpus")

TEN = "[" + ", ".join(f"{0.01 * i:.2f}" for i in range(10)) + "]"

# One text-format Envelope per message type, and a few variants that reach other branches
# (wrong protocol version, a model mismatch, bad dimensions, NaN, an unknown enum value).
ENVELOPES = {
    "hello": 'hello { protocol_version: 1 worker_name: "seed" capabilities { threads: 1 architectures: "mlp" max_units_ahead: 2 } }',
    "hello-old-version": 'hello { protocol_version: 0 worker_name: "old" }',
    "hello-cnn-only": 'hello { protocol_version: 1 worker_name: "cnn" capabilities { architectures: "cnn" } }',
    "welcome": 'welcome { protocol_version: 1 worker_id: 3 session_id: "s-1" mode: "async" '
               'model { architecture: "mlp" hidden_sizes: 512 parameter_count: 10 '
               'tensors { name: "dense0.weight" shape: [2, 4] offset: 0 } tensors { name: "dense0.bias" shape: 2 offset: 8 } '
               'input_height: 2 input_width: 2 classes: 2 } batch_size: 8 local_steps: 1 local_learning_rate: 0.05 '
               'train_samples: 64 heartbeat_interval_ms: 1000 }',
    "pull": "pull { known_version: 0 }",
    "pull-known": "pull { known_version: 18446744073709551615 }",
    "weights": f"weights {{ version: 7 values: {TEN} }}",
    "work-unit": "work_unit { unit_id: 5 epoch: 0 indices: [0, 1, 2, 3, 4, 5, 6, 7] min_version: 2 }",
    "push-gradient": f"push {{ unit_id: 0 base_version: 0 kind: UPDATE_KIND_GRADIENT loss: 0.5 sample_count: 8 values: {TEN} }}",
    "push-delta": f"push {{ unit_id: 1 base_version: 0 kind: UPDATE_KIND_DELTA loss: 0.5 sample_count: 8 values: {TEN} }}",
    "push-short": "push { unit_id: 2 sample_count: 8 values: [1.0, 2.0] }",
    "push-nan": "push { unit_id: 3 sample_count: 8 values: [nan, 0, 0, 0, 0, 0, 0, 0, 0, 0] }",
    "push-ack": 'push_ack { unit_id: 5 applied: true server_version: 9 staleness: 2 reason: "ok" }',
    "heartbeat": "heartbeat { seq: 4 unix_nanos: 1700000000000000000 }",
    "leave": 'leave { reason: "done" }',
    "session-end": "session_end { test_accuracy: 0.97 test_loss: 0.1 epochs: 5 updates: 4690 final_version: 4690 }",
    "error": 'error { code: CODE_MALFORMED message: "bad" fatal: true }',
    "challenge": 'challenge { server_nonce: "0123456789abcdef0123456789abcdef" }',
    "challenge-response": 'challenge_response { client_nonce: "fedcba9876543210fedcba9876543210" '
                          'mac: "0123456789abcdef0123456789abcdef" }',
    "challenge-response-short": 'challenge_response { client_nonce: "abc" mac: "x" }',
    "empty": "",
}


def encode(text):
    """The binary encoding of one text-format Envelope, by protoc."""
    return subprocess.run(
        ["protoc", f"--proto_path={SCHEMAS}", "--encode=downpour.Envelope", "parameter_server.proto"],
        input=text.encode(), capture_output=True, check=True).stdout


def frame(payload):
    return struct.pack("<I", len(payload)) + payload


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main():
    shutil.rmtree(CORPUS, ignore_errors=True)
    messages = {name: encode(text) for name, text in ENVELOPES.items()}
    # An Envelope with an unknown field (number 99, varint 42) after its body: it must survive a round trip.
    messages["pull-unknown-field"] = messages["pull"] + bytes([0x98, 0x06, 0x2A])

    # FuzzEnvelope: bare Envelopes, and every one cut short.
    for name, payload in messages.items():
        write("FuzzEnvelope", name, payload)
        if len(payload) > 2:
            write("FuzzEnvelope", f"{name}-truncated", payload[: len(payload) // 2])

    # FuzzFrameDecoder: byte 0 is half the maximum frame length, byte 1 the read-splitting seed.
    stream = b"".join(frame(p) for p in messages.values())
    for seed in range(4):
        write("FuzzFrameDecoder", f"all-messages-split{seed}", bytes([255, seed]) + stream)
    write("FuzzFrameDecoder", "empty-frames", bytes([4, 1]) + frame(b"") * 3 + frame(b"abc"))
    write("FuzzFrameDecoder", "too-long", bytes([8, 2]) + frame(b"12345678") + frame(b"x" * 17))
    write("FuzzFrameDecoder", "four-gib", bytes([255, 3]) + b"\xff\xff\xff\xff")
    write("FuzzFrameDecoder", "truncated-prefix", bytes([255, 0]) + frame(messages["hello"]) + b"\x05\x00")
    write("FuzzFrameDecoder", "truncated-payload", bytes([255, 1]) + frame(messages["weights"])[:-3])
    write("FuzzFrameDecoder", "big-gathered", bytes([255, 3]) + frame(bytes(range(256)) + bytes(254)))

    # FuzzServerConnection: byte 0 bit 0 sends a valid Hello first, bit 1 picks the server with a
    # token; the rest is the stream as sent.
    joined = [frame(messages[n]) for n in ("pull", "push-gradient", "pull-known", "heartbeat", "push-delta")]
    write("FuzzServerConnection", "worker-session", b"\x01" + b"".join(joined) + frame(messages["leave"]))
    write("FuzzServerConnection", "worker-drops", b"\x01" + b"".join(joined))
    write("FuzzServerConnection", "own-hello", b"\x00" + frame(messages["hello"]) + frame(messages["pull"]))
    for name in ("hello-old-version", "hello-cnn-only", "pull", "welcome", "empty"):
        write("FuzzServerConnection", f"first-{name}", b"\x00" + frame(messages[name]))
    for name in ("push-short", "push-nan", "welcome", "work-unit", "error", "session-end", "pull-unknown-field"):
        write("FuzzServerConnection", f"joined-{name}", b"\x01" + frame(messages[name]))
    write("FuzzServerConnection", "garbage-frame", b"\x00" + frame(b"\xff" * 12))
    write("FuzzServerConnection", "four-gib", b"\x01" + b"\xff\xff\xff\xff")
    write("FuzzServerConnection", "truncated", b"\x01" + frame(messages["push-gradient"])[:-5])
    for name in ("challenge-response", "challenge-response-short", "pull", "push-gradient", "challenge"):
        write("FuzzServerConnection", f"token-{name}", b"\x03" + frame(messages[name]))
    write("FuzzServerConnection", "token-own-hello", b"\x02" + frame(messages["hello"]) + frame(messages["challenge-response"]))

    tensor_seeds()
    tls_seeds()
    replica_seeds()


def tensor_seeds():
    """FuzzTensorDecoding: byte 0 the encoding (0 fp32, 1 fp16, 2 bf16, 3 q8, 4 sign, 5 topk), byte 1
    the block size minus 1, bytes 2-3 the value count; then the payload. The README's worked examples
    (Sources/TensorEncoding/README.md), larger valid payloads, and each cut short."""
    def seed(name, encoding, block, count, payload):
        data = bytes([encoding, block - 1]) + struct.pack("<H", count) + payload
        write("FuzzTensorDecoding", name, data)
        if len(payload) > 2:
            write("FuzzTensorDecoding", f"{name}-truncated", data[: 4 + len(payload) // 2])

    h = bytes.fromhex
    seed("fp32-example", 0, 1, 2, h("0000803F000020C0"))
    seed("fp16-example", 1, 1, 5, h("003C00C1662EFF7B0100"))
    seed("bf16-example", 2, 1, 3, h("803F20C0CD3D"))
    seed("q8-example", 3, 4, 5, h("0000803F7FC00002" "0000803E81"))
    seed("sign-example", 4, 4, 6, h("000040400A0000803F02"))
    seed("topk-example", 5, 1, 8, h("03000000020201" "00C4004100C8"))
    seed("topk-two-byte-gap", 5, 1, 300, h("02000000" "00AA02" "003C00BC"))

    values = [((i * 37) % 101 - 50) / 64.0 for i in range(300)]
    seed("fp32-300", 0, 1, 300, struct.pack("<300f", *values))
    seed("fp16-300", 1, 1, 300, struct.pack("<300e", *values))
    seed("bf16-300", 2, 1, 300, b"".join(struct.pack("<f", v)[2:] for v in values))
    q8 = b""
    for start in range(0, 300, 64):
        block = values[start:start + 64]
        scale = max(abs(v) for v in block) / 127
        q8 += struct.pack("<f", scale) + bytes((round(v / scale) & 0xFF) if scale else 0 for v in block)
    seed("q8-300-block64", 3, 64, 300, q8)
    sign = b""
    for start in range(0, 300, 100):
        block = values[start:start + 100]
        bits = sum(1 << i for i, v in enumerate(block) if v < 0)
        sign += struct.pack("<f", sum(abs(v) for v in block) / len(block)) + bits.to_bytes((len(block) + 7) // 8, "little")
    seed("sign-300-block100", 4, 100, 300, sign)
    indices = [3, 4, 90, 299]
    def varint(n):
        out = b""
        while n >= 0x80:
            out += bytes([n & 0x7F | 0x80])
            n >>= 7
        return out + bytes([n])
    gaps = b"".join(varint(i - p - 1) for p, i in zip([-1] + indices, indices))
    seed("topk-4-of-300", 5, 1, 300, struct.pack("<I", 4) + gaps + struct.pack("<4e", 1.5, -2, 0.25, 7))


def tls_seeds():
    """FuzzTLSRecords: byte 0 the mode, byte 1 the slicing seed, then the data (see its source)."""
    import ssl
    # A real ClientHello (TLS 1.3 and 1.2 offered), from Python's ssl module through memory BIOs.
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    write("FuzzTLSRecords", "client-hello", bytes([0, 1]) + hello)
    write("FuzzTLSRecords", "client-hello-split", bytes([4, 200]) + hello)
    write("FuzzTLSRecords", "client-hello-cut", bytes([0, 7]) + hello[: len(hello) // 2])
    write("FuzzTLSRecords", "plaintext-frame", bytes([0, 3]) + frame(b"hello"))
    write("FuzzTLSRecords", "http", bytes([0, 3]) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    write("FuzzTLSRecords", "alert", bytes([1, 2]) + bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]))
    write("FuzzTLSRecords", "server-hello-prefix", bytes([1, 5]) + bytes([0x16, 0x03, 0x03, 0x00, 0x5A, 0x02, 0x00, 0x00, 0x56, 0x03, 0x03]) + bytes(32))
    write("FuzzTLSRecords", "frames", bytes([2, 9]) + frame(b"") + frame(b"abc") + frame(bytes(range(256)) * 4) + frame(b"z"))
    write("FuzzTLSRecords", "frames-large", bytes([6, 255]) + frame(bytes(20000)) + frame(b"after"))
    write("FuzzTLSRecords", "frames-too-long", bytes([2, 0]) + frame(b"ok") + struct.pack("<I", 100000) + b"xyz")
    write("FuzzTLSRecords", "frames-truncated", bytes([2, 17]) + frame(b"whole") + frame(b"cut short")[:-3])
    write("FuzzTLSRecords", "untampered", bytes([3, 4]) + bytes(64))
    write("FuzzTLSRecords", "tampered-header", bytes([3, 4]) + bytes([1]))
    write("FuzzTLSRecords", "tampered-body", bytes([3, 4]) + bytes(40) + bytes([0x80]))


def replica_seeds():
    """FuzzWeightsReplica: byte 0 the delta encoding (0 sign(4), 1 q8(4), 2 topk(3), 3 fp16), byte 1 the
    pull encoding (0 fp32, 1 q8(4)), byte 2 the value count; then frames of a 2-byte length and an
    Envelope, by protoc. A chain as a server sends it (the protocol README's delta among them), one
    per delta encoding, and the ways a delta goes wrong: another base, a short payload, a NaN scale,
    values in a delta, whole weights of the wrong length, whole weights after a mismatch."""
    def weights(fields):
        payload = encode("weights { " + fields + " }")
        return struct.pack("<H", len(payload)) + payload

    def esc(data):
        return "".join(f"\\x{b:02x}" for b in data)

    six = "values: [0, 0, 0, 0, 0, 0]"
    readme = esc(bytes.fromhex("0000c03e0a0000803f02"))
    chains = {
        "sign": (0, readme, esc(bytes.fromhex("0000803e050000003f01"))),
        "q8": (1, esc(struct.pack("<f", 1 / 127) + bytes([127, 0x81, 64, 0]) + struct.pack("<f", 0.5 / 127) + bytes([127, 0x81])),
               esc(struct.pack("<f", 0) + bytes(4) + struct.pack("<f", 1 / 127) + bytes([1, 2]))),
        "topk": (2, esc(struct.pack("<I", 2) + bytes([1, 3]) + struct.pack("<2e", 0.5, -1)),
                 esc(struct.pack("<I", 1) + bytes([5]) + struct.pack("<e", 2))),
        "fp16": (3, esc(struct.pack("<6e", 0.5, -0.25, 0.25, -0.5, 1, -1)), esc(struct.pack("<6e", 1, 1, 1, 1, 1, 1))),
    }
    for name, (selector, first, second) in chains.items():
        chain = (weights("version: 5 " + six) + weights(f'version: 7 encoded_values: "{first}" base_version: 5')
                 + weights(f'version: 9 encoded_values: "{second}" base_version: 7') + weights("version: 9"))
        write("FuzzWeightsReplica", f"chain-{name}", bytes([selector, 0, 6]) + chain)
    start = weights("version: 5 " + six)
    broken = {
        "other-base": weights(f'version: 7 encoded_values: "{readme}" base_version: 4') + weights(f'version: 8 encoded_values: "{readme}" base_version: 7')
                      + weights("version: 3 " + six) + weights(f'version: 7 encoded_values: "{readme}" base_version: 3'),
        "short": weights(f'version: 7 encoded_values: "{esc(bytes.fromhex("0000c03e0a0000803f"))}" base_version: 5'),
        "nan-scale": weights(f'version: 7 encoded_values: "{esc(bytes.fromhex("0000c07f0a0000803f02"))}" base_version: 5'),
        "values-in-delta": weights(f"version: 7 {six} base_version: 5"),
        "wrong-length": weights("version: 8 values: [1, 2, 3]"),
        "stale": weights(f'version: 5 encoded_values: "{readme}" base_version: 4') + weights("version: 4 " + six),
    }
    for name, frames in broken.items():
        write("FuzzWeightsReplica", name, bytes([0, 0, 6]) + start + frames)
    write("FuzzWeightsReplica", "delta-first", bytes([0, 0, 6]) + weights(f'version: 7 encoded_values: "{readme}" base_version: 0'))
    q8_whole = esc(struct.pack("<f", 1 / 127) + bytes([127, 0x81, 1, 0]) + struct.pack("<f", 0) + bytes(2))
    write("FuzzWeightsReplica", "q8-keyframe", bytes([0, 1, 6]) + weights(f'version: 2 encoded_values: "{q8_whole}"')
          + weights(f'version: 7 encoded_values: "{readme}" base_version: 2'))


if __name__ == "__main__":
    main()
