# Shared by the parameter-server benchmark scripts (sourced, not run): release builds of the named
# products, a log directory, the PIDs to end on exit, and reading a summary line's fields.

# release_build PRODUCT...: builds each in release mode and sets $bin to the build directory.
release_build() {
    for product in "$@"; do
        swift build -c release --product "$product" >/dev/null
    done
    bin="$(swift build -c release --show-bin-path)"
}

# Every background process a script starts goes into $pids; they are ended on exit, also on failure.
logs="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# field FILE KEY: KEY's value in the key=value summary on FILE's last line.
field() { tail -n 1 "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
