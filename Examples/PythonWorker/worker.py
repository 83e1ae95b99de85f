#!/usr/bin/env python3
"""A Downpour worker in Python, written from Schemas/Messages/README.md alone: Google's protobuf runtime
for the messages, the standard library's ssl for TLS 1.3, and a pure-Python MLP for the gradients.

    worker.py HOST PORT [--tls-ca CA.pem [--tls-cert C.pem --tls-key K.pem]] [--server-name NAME] [--data DIR] [--name NAME]

It joins one session of the built-in `mlp` family with one local step per unit (ps-server
--uncompressed: fp32 gradients), trains every WorkUnit it is given, and exits 0 after SessionEnd. It
has no token: Python's ssl cannot export keying material, which the token's MACs are bound to over
TLS (Schemas/Messages/README.md, Authentication), so it joins servers that admit it without one.
"""
import argparse, gzip, math, os, socket, ssl, struct, subprocess, sys, tempfile, time

def messages():
    """parameter_server_pb2, generated from the schema with protoc into a temporary directory."""
    schemas = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Schemas", "Messages")
    out = tempfile.mkdtemp(prefix="downpour-pb2-")
    subprocess.run(["protoc", f"--proto_path={schemas}", f"--python_out={out}", "parameter_server.proto"], check=True)
    sys.path.insert(0, out)
    import parameter_server_pb2
    return parameter_server_pb2

pb = messages()

def load_mnist(directory, count):
    """The first `count` training images, normalised as the README says, and their labels."""
    def read(name):
        path = os.path.join(directory, name)
        with (gzip.open(path + ".gz") if os.path.exists(path + ".gz") else open(path, "rb")) as f:
            return f.read()
    images, labels = read("train-images-idx3-ubyte"), read("train-labels-idx1-ubyte")
    magic, n, rows, cols = struct.unpack(">IIII", images[:16])
    assert magic == 0x803 and rows == cols == 28 and n >= count, "not MNIST's training images"
    scale, shift = 1 / (255 * 0.3081), 0.1307 / 0.3081
    pixels = [[b * scale - shift for b in images[16 + i * 784:16 + (i + 1) * 784]] for i in range(count)]
    return pixels, list(labels[8:8 + count])

class MLP:
    """Dense layers (weight [in, out] row-major, then bias), ReLU on all but the last; softmax cross-entropy."""
    def __init__(self, spec):
        assert spec.architecture == "mlp", f"this worker builds only mlp, not {spec.architecture}"
        self.sizes = [spec.input_height * spec.input_width] + list(spec.hidden_sizes) + [spec.classes]
        offset, self.layers = 0, []
        for i, (n_in, n_out) in enumerate(zip(self.sizes, self.sizes[1:])):
            w, b = spec.tensors[2 * i], spec.tensors[2 * i + 1]
            assert list(w.shape) == [n_in, n_out] and w.offset == offset and list(b.shape) == [n_out], "unexpected layout"
            self.layers.append((offset, n_in, n_out, offset + n_in * n_out))
            offset += n_in * n_out + n_out
        assert offset == spec.parameter_count, "parameter count does not match the layout"
        self.count = offset

    def loss_and_gradient(self, params, xs, ys):
        grad = [0.0] * self.count
        total = 0.0
        for x, y in zip(xs, ys):
            acts = [x]
            for k, (w, n_in, n_out, b) in enumerate(self.layers):
                a = acts[-1]
                z = [params[b + j] + sum(a[i] * params[w + i * n_out + j] for i in range(n_in) if a[i]) for j in range(n_out)]
                acts.append(z if k == len(self.layers) - 1 else [max(v, 0.0) for v in z])
            logits = acts[-1]
            top = max(logits)
            exps = [math.exp(v - top) for v in logits]
            s = sum(exps)
            total += math.log(s) - (logits[y] - top)
            delta = [e / s for e in exps]
            delta[y] -= 1.0
            for k in range(len(self.layers) - 1, -1, -1):
                w, n_in, n_out, b = self.layers[k]
                a = acts[k]
                for j in range(n_out):
                    grad[b + j] += delta[j]
                for i in range(n_in):
                    if a[i]:
                        base, ai = w + i * n_out, a[i]
                        for j in range(n_out):
                            grad[base + j] += ai * delta[j]
                if k > 0:
                    delta = [sum(params[w + i * n_out + j] * delta[j] for j in range(n_out)) if a[i] > 0 else 0.0 for i in range(n_in)]
        n = len(xs)
        return total / n, [g / n for g in grad]

class Connection:
    """Frames: a 4-byte little-endian length, then one Envelope."""
    def __init__(self, sock):
        self.sock, self.buffer = sock, b""

    def send(self, **body):
        """Sends one frame; False when the server has already closed (it ends a session that way)."""
        data = pb.Envelope(**body).SerializeToString()
        try:
            self.sock.sendall(struct.pack("<I", len(data)) + data)
            return True
        except (ssl.SSLError, OSError):
            return False

    def receive(self, timeout):
        self.sock.settimeout(timeout)
        while len(self.buffer) < 4 or len(self.buffer) < 4 + struct.unpack("<I", self.buffer[:4])[0]:
            try:
                chunk = self.sock.recv(1 << 20)
            except (socket.timeout, ssl.SSLWantReadError):
                return None
            except (ssl.SSLError, OSError) as error:
                raise ConnectionError(f"the connection failed: {error}")
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self.buffer += chunk
        n = struct.unpack("<I", self.buffer[:4])[0]
        envelope = pb.Envelope.FromString(self.buffer[4:4 + n])
        self.buffer = self.buffer[4 + n:]
        return envelope

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host"); parser.add_argument("port", type=int)
    parser.add_argument("--tls-ca"); parser.add_argument("--server-name")
    parser.add_argument("--tls-cert", help="this worker's certificate, for a server with --tls-client-ca")
    parser.add_argument("--tls-key")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Data", "mnist"))
    parser.add_argument("--name", default=f"python-{os.getpid()}")
    args = parser.parse_args()

    sock = socket.create_connection((args.host, args.port), timeout=30)
    if args.tls_ca:
        context = ssl.create_default_context(cafile=args.tls_ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        if args.tls_cert:
            context.load_cert_chain(args.tls_cert, args.tls_key)
        sock = context.wrap_socket(sock, server_hostname=args.server_name or args.host)
        print(f"{args.name}: {sock.version()} with {args.server_name or args.host}, cipher {sock.cipher()[0]}", flush=True)
    conn = Connection(sock)
    conn.send(hello=pb.Hello(protocol_version=1, worker_name=args.name,
                             capabilities=pb.Capabilities(threads=1, architectures=["mlp"], max_units_ahead=1)))
    welcome = None
    while welcome is None:
        envelope = conn.receive(30)
        kind = envelope.WhichOneof("body") if envelope else None
        if kind == "error":
            sys.exit(f"{args.name}: server: {envelope.error.message}")
        if kind == "welcome":
            welcome = envelope.welcome
    if welcome.local_steps != 1 or welcome.push_encoding.name not in ("", "fp32") or welcome.pull_encoding.name not in ("", "fp32"):
        conn.send(error=pb.ErrorReport(code=pb.ErrorReport.CODE_MODEL_MISMATCH, message="this worker pushes fp32 gradients only", fatal=True))
        sys.exit(f"{args.name}: the session is not one fp32 gradient per unit (start ps-server with --uncompressed)")
    model = MLP(welcome.model)
    xs, ys = load_mnist(args.data, welcome.train_samples)
    print(f"{args.name}: joined session {welcome.session_id} as worker {welcome.worker_id}, "
          f"MLP {'-'.join(map(str, model.sizes))}, {welcome.train_samples} samples", flush=True)

    params, version, units, pushed, applied = None, 0, [], 0, 0
    interval = max(welcome.heartbeat_interval_ms, 100) / 1000
    last_beat = time.monotonic()
    while True:
        if time.monotonic() - last_beat >= interval:
            conn.send(heartbeat=pb.Heartbeat(seq=pushed, unix_nanos=time.time_ns()))
            last_beat = time.monotonic()
        if units and params is not None and version >= units[0].min_version:
            unit = units.pop(0)
            loss, grad = model.loss_and_gradient(params, [xs[i] for i in unit.indices], [ys[i] for i in unit.indices])
            conn.send(push=pb.Push(unit_id=unit.unit_id, base_version=version, kind=pb.UPDATE_KIND_GRADIENT,
                                   loss=loss, sample_count=len(unit.indices), values=grad))
            pushed += 1
            conn.send(pull=pb.Pull(known_version=version))
        try:
            envelope = conn.receive(0.05)
        except ConnectionError as error:
            # A push that raced the session's end finds the connection closed; what the server sent
            # before closing (its SessionEnd) has been read by now.
            sys.exit(f"{args.name}: {error} before the session ended; pushed {pushed} unit(s), {applied} applied")
        kind = envelope.WhichOneof("body") if envelope else None
        if kind == "weights" and len(envelope.weights.values) == model.count:
            params, version = list(envelope.weights.values), envelope.weights.version
        elif kind == "work_unit":
            units.append(envelope.work_unit)
        elif kind == "push_ack":
            applied += envelope.push_ack.applied
        elif kind == "error":
            print(f"{args.name}: server: {envelope.error.message}", flush=True)
            if envelope.error.fatal:
                sys.exit(1)
        elif kind == "session_end":
            end = envelope.session_end
            print(f"{args.name}: session over: test accuracy {100 * end.test_accuracy:.2f}% after {end.updates} updates; "
                  f"this worker pushed {pushed} unit(s), {applied} applied", flush=True)
            return

if __name__ == "__main__":
    main()
