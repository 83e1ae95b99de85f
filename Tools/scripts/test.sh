#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/../.."
Tools/scripts/install-deps.sh
# The Kubernetes manifests against the API schemas (deploy/README.md): under a second once its
# validator is installed in .build-deploy/.
deploy/test/validate-manifests.sh
# The toolchain's usual place on these machines, in case the shell has not put it on PATH.
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
swift build --build-tests
# Unit suites in parallel. The end-to-end suites run in a process of their own, one test at a time:
# their tests block a thread while they wait on real processes, and Swift Testing's cooperative pool
# has one thread per core, so beside them (2 cores) the unit suites' async tests starved past their
# time limits. One at a time also leaves a thread free for every time limit to fire
# (this includes the soak tool's tests, each a server and a fleet loading MNIST).
swift test --skip-build --parallel --skip EndToEndTests
SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=1 swift test --skip-build --filter EndToEndTests
# The 2-minute soak (README, "Soak test"): a churning fleet, server kills and resumes, then checks that
# nothing was lost, leaked or left behind. It exits non-zero if any check fails.
swift run --skip-build ps-soak --minutes 2
