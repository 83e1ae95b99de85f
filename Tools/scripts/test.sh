#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/../.."
Tools/scripts/install-deps.sh
# The toolchain's usual place on these machines, in case the shell has not put it on PATH.
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
swift build --build-tests
# The soak tool's tests run on their own, one soak at a time: each is a server and a fleet loading MNIST,
# and beside the parallel suite on two cores they starved its tests past their time limits.
swift test --skip-build --parallel --skip SoakToolTests
swift test --skip-build --filter SoakToolTests
# The 2-minute soak (README, "Soak test"): a churning fleet, server kills and resumes, then checks that
# nothing was lost, leaked or left behind. It exits non-zero if any check fails.
swift run --skip-build ps-soak --minutes 2
