#!/usr/bin/env bash
# Validates every manifest under deploy/kubernetes against the API schemas of Kubernetes releases, with
# kubernetes-validate (PyPI), which bundles them: strictly (an unknown field fails), and a warning
# (a kind or apiVersion it has no schema for) fails too. Tools/scripts/test.sh runs this.
#
#   deploy/test/validate-manifests.sh [FILE.yaml ...]     # default: deploy/kubernetes/*.yaml
#
# The tool lives in a virtual environment under .build-deploy/ (git-ignored), made once; later runs
# need no network. VENV overrides its place, KUBERNETES_VERSIONS the releases checked.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The newest release the pinned tool bundles, and the oldest still supported upstream when it came out.
read -r -a versions <<<"${KUBERNETES_VERSIONS:-1.37.0 1.35.0}"
pinned=1.37.0
venv=${VENV:-$PWD/.build-deploy/venv}

# The marker is written last, so an interrupted install is redone rather than half-used.
if [ ! -e "$venv/.installed-$pinned" ]; then
    echo "Installing kubernetes-validate $pinned into $venv ..." >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    if ! python3 -m venv "$venv" >/dev/null; then
        echo "validate-manifests.sh: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
        exit 1
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$pinned" >&2
    touch "$venv/.installed-$pinned"
fi

if [ $# -gt 0 ]; then files=("$@"); else files=(deploy/kubernetes/*.yaml); fi
[ -e "${files[0]}" ] || { echo "validate-manifests.sh: no manifests found" >&2; exit 1; }

status=0
for version in "${versions[@]}"; do
    output=$("$venv/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$version" "${files[@]}" 2>&1) || status=1
    [ -z "$output" ] || printf '%s\n' "$output"
    # kubernetes-validate exits 0 when it has no schema for a kind (a typo in kind or apiVersion).
    if grep -qE '^(WARN|ERROR)' <<<"$output"; then status=1; fi
done
if [ $status -ne 0 ]; then
    echo "validate-manifests.sh: the manifests do not validate" >&2
    exit 1
fi
echo "validate-manifests.sh: ${#files[@]} manifest(s) valid against Kubernetes ${versions[*]}" >&2
