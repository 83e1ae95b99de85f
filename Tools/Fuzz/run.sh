#!/usr/bin/env bash
# Builds one fuzz target with libFuzzer and AddressSanitizer and runs it for SECONDS on a scratch copy
# of its checked-in seed corpus, then prints libFuzzer's final figures.
#
#   Tools/Fuzz/run.sh FuzzFrameDecoder 600
#   Tools/Fuzz/run.sh FuzzServerConnection 60 -jobs=1 -dict=...   # extra arguments go to libFuzzer
#
# The scratch directory (printed) keeps the grown corpus and any crash-* file; the repository's
# Corpus/ is never written to. Set FUZZ_WORK to choose the scratch directory.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 FuzzFrameDecoder|FuzzEnvelope|FuzzServerConnection|FuzzTensorDecoding|FuzzTLSRecords|FuzzWeightsReplica SECONDS [libFuzzer options...]" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
if [[ ! -d "$here/Corpus/$target" ]]; then
    echo "$0: no target $target (expected $here/Corpus/$target)" >&2
    exit 2
fi
command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"

# SwiftPM's --sanitize=fuzzer links libFuzzer's main but on Swift 6.3 does not instrument the code
# when --sanitize=address comes too (only the last -sanitize= reaches the compiler), so the
# instrumentation is asked for once more, whole, through -Xswiftc.
(cd "$here" && nice swift build -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address --product "$target")

work=${FUZZ_WORK:-$(mktemp -d "/tmp/downpour-fuzz-$target.XXXXXX")}
mkdir -p "$work/corpus"
cp -n "$here/Corpus/$target/"* "$work/corpus/" 2>/dev/null || true
echo "fuzzing $target for $seconds s in $work (log: $work/fuzz.log)"

# The server target prints one log line per refused peer; -close_fd_mask=1 silences its stdout
# (libFuzzer reports on stderr). A crash leaves $work/crash-<sha1>.
# The server target's loop thread allocates and frees on its own schedule, so libFuzzer's per-input
# malloc/free counts rarely balance and it would run LeakSanitizer after nearly every input (ten
# times slower); leaks there are left to the other targets and to the ASan test runs.
extra=()
if [[ $target == FuzzServerConnection ]]; then extra+=(-detect_leaks=0); fi

# Swift's own crash backtracer would read the stack ASan is watching and muddle the report.
export SWIFT_BACKTRACE=enable=no
set +e
(cd "$work" && nice "$here/.build/release/$target" -max_total_time="$seconds" -print_final_stats=1 \
    -close_fd_mask=1 -artifact_prefix="$work/" ${extra[@]+"${extra[@]}"} "$@" corpus) 2>"$work/fuzz.log"
status=$?
set -e

# The last progress line carries cov/ft/corp; the final stats carry executions and exec/s.
grep -E '^#[0-9]+' "$work/fuzz.log" | tail -1
grep -E '^stat::' "$work/fuzz.log" || true
echo "corpus: $(ls "$work/corpus" | wc -l) files; crashes: $(ls "$work" | grep -cE '^(crash|leak|timeout|oom)-' || true)"
if [[ $status -ne 0 ]]; then
    echo "libFuzzer exited with status $status; see $work/fuzz.log"
    grep -E 'ERROR|Fatal error|SUMMARY' "$work/fuzz.log" | head -5
fi
exit $status
