#!/usr/bin/env bash
# Builds the Downpour container image from this checkout, offline, with no base image: the release
# executables (ps-server, ps-worker, ps-shard, ps-train), the Swift runtime and the shared libraries they load
# (libuv, zlib, OpenSSL, libstdc++, glibc, and OpenBLAS, which Learning's BLAS.swift opens with dlopen at run
# time), the MNIST data and a non-root user (10001), assembled into a root file system and turned
# into an image FROM scratch. deploy/README.md ("Running on Kubernetes") documents the image.
#
#   Tools/scripts/build-image.sh                       # builds localhost/downpour:latest with podman
#   Tools/scripts/build-image.sh --tag NAME[:TAG]      # another name
#   Tools/scripts/build-image.sh --rootfs-only DIR     # only assembles the root file system in DIR
#                                                      # (deploy/Containerfile's build stage uses this)
#
# Environment: SCRATCH (SwiftPM's scratch path, default .build-image, git-ignored), CONTAINER_ENGINE
# (default podman). The executables link the Swift runtime dynamically, so the three share one copy
# of it and of FoundationEssentials (they import no Foundation, hence no ICU data: 83 MiB in all).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

tag=localhost/downpour:latest
rootfs_only=
while [ $# -gt 0 ]; do
    case "$1" in
        --tag) tag=$2; shift 2 ;;
        --rootfs-only) rootfs_only=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) echo "build-image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

scratch=${SCRATCH:-$root/.build-image}
engine=${CONTAINER_ENGINE:-podman}
products=(ps-server ps-worker ps-shard ps-train)
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
if [ -z "$rootfs_only" ] && ! command -v "$engine" >/dev/null; then
    echo "build-image.sh: $engine is not installed (Debian: apt-get install podman; deploy/test/play-session.sh installs it)" >&2
    exit 1
fi
for tool in swift ldd ldconfig strip; do
    command -v $tool >/dev/null || { echo "build-image.sh: $tool is not on PATH" >&2; exit 1; }
done

# 1. The release executables. Without a network, SwiftPM takes the dependencies from its cache of
#    repositories (~/.cache/org.swift.swiftpm), filled by the ordinary build.
for product in "${products[@]}"; do
    echo "== swift build -c release --product $product" >&2
    swift build -c release --scratch-path "$scratch" --product "$product" >&2
done
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)

# 2. The root file system.
if [ -n "$rootfs_only" ]; then
    rootfs=$rootfs_only
    context=
else
    context=$scratch/image
    rootfs=$context/rootfs
    rm -rf "$context"
fi
rm -rf "$rootfs"
mkdir -p "$rootfs"/{opt/downpour/bin,opt/downpour/lib,etc/ld.so.conf.d,tmp}
chmod 1777 "$rootfs/tmp"
# Keep the host's merged-/usr layout (/lib -> usr/lib, ...) so the loader's path, /lib64/ld-linux-*.so.2,
# resolves inside the image as it does here.
for link in bin sbin lib lib32 lib64 libx32; do
    if [ -L "/$link" ]; then ln -s "$(readlink "/$link")" "$rootfs/$link"; fi
done

for product in "${products[@]}"; do
    strip -o "$rootfs/opt/downpour/bin/$product" "$bin/$product"
done

# OpenBLAS is not a link-time dependency: BLAS.swift dlopens "libopenblas.so.0" (then Debian's
# openblas-pthread path), so take whichever the host's loader would give it.
arch=$(uname -m)
openblas=$(ldconfig -p | awk -v arch="$arch" '$1 == "libopenblas.so.0" && $0 ~ arch { print $NF; exit }')
[ -n "$openblas" ] || openblas=/usr/lib/$arch-linux-gnu/openblas-pthread/libopenblas.so.0
[ -e "$openblas" ] || { echo "build-image.sh: no libopenblas.so.0 here (Debian: apt-get install libopenblas0-pthread)" >&2; exit 1; }

# Copies one library into the image under the name the loader asked for (dereferenced): Swift's
# runtime into /opt/downpour/lib, everything else into the real directory it has on this machine.
copy_library() {
    local path=$1 name directory
    name=$(basename "$path")
    if [[ "$path" == */lib/swift/linux/* ]]; then
        directory=/opt/downpour/lib
    else
        directory=$(cd "$(dirname "$path")" && pwd -P)
    fi
    [ -e "$rootfs$directory/$name" ] && return 0
    mkdir -p "$rootfs$directory"
    cp -L "$path" "$rootfs$directory/$name"
    # Swift's runtime ships with its symbol tables; the loader needs only the dynamic ones.
    if [[ "$path" == */lib/swift/linux/* ]]; then strip --strip-unneeded "$rootfs$directory/$name"; fi
}

# The libraries every executable and OpenBLAS load, and the loader itself.
needed=$(for object in "${products[@]/#/$bin/}" "$openblas"; do ldd "$object"; done)
if grep -q 'not found' <<<"$needed"; then
    echo "build-image.sh: libraries not found: $(grep 'not found' <<<"$needed" | awk '{ print $1 }' | sort -u | xargs)" >&2
    exit 1
fi
mapfile -t libraries < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$needed" | sort -u)
for library in "${libraries[@]}"; do copy_library "$library"; done
openblas_directory=$(cd "$(dirname "$(readlink -f "$openblas")")" && pwd -P)
mkdir -p "$rootfs$openblas_directory"
cp -L "$openblas" "$rootfs$openblas_directory/libopenblas.so.0"
system_directory=/usr/lib/$arch-linux-gnu
if [ "$openblas_directory" != "$system_directory" ] && [ -d "$rootfs$system_directory" ]; then
    ln -sf "${openblas_directory#"$system_directory/"}/libopenblas.so.0" "$rootfs$system_directory/libopenblas.so.0"
fi

# The loader's cache, so that the libraries are found by name (dlopen too) without LD_LIBRARY_PATH.
echo "include /etc/ld.so.conf.d/*.conf" > "$rootfs/etc/ld.so.conf"
echo /opt/downpour/lib > "$rootfs/etc/ld.so.conf.d/downpour.conf"
find "$rootfs/usr" "$rootfs/opt/downpour/lib" -name '*.so*' -printf '%h\n' 2>/dev/null | sort -u \
    | sed "s|^$rootfs||" | grep -v '^/opt/downpour/lib$' > "$rootfs/etc/ld.so.conf.d/system.conf"
ldconfig -r "$rootfs"

# The data: ps-server and ps-worker find Data/mnist next to the directory of their executable.
mkdir -p "$rootfs/opt/downpour/Data/mnist"
cp Data/mnist/*.gz Data/mnist/SHA256SUMS Data/mnist/README.md "$rootfs/opt/downpour/Data/mnist/"

# A non-root user, and name resolution for the Service's DNS name (glibc reads nsswitch.conf).
cat > "$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
downpour:x:10001:10001:Downpour:/home/downpour:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
EOF
cat > "$rootfs/etc/group" <<'EOF'
root:x:0:
downpour:x:10001:
nogroup:x:65534:
EOF
echo "hosts: files dns" > "$rootfs/etc/nsswitch.conf"

# Smoke test, as root: inside the root file system (with /proc and /dev mounted, as a container runtime
# does), as user 10001, with the image's loader, cache and libraries and nothing of this machine's,
# every executable starts, and ps-train opens OpenBLAS, finds the data and trains a little.
mkdir -p "$rootfs"/{proc,dev,sys}
# (Skipped where mount namespaces are not allowed, as in a container build's RUN step.)
if [ "$(id -u)" -eq 0 ] && command -v chroot >/dev/null && unshare --mount true 2>/dev/null; then
    # shellcheck disable=SC2016
    if ! unshare --mount --propagation private sh -euc '
        cd "$1"; shift
        mount -t proc proc proc; mount --rbind /dev dev
        for product in "$@"; do chroot --userspec=10001:10001 . "/opt/downpour/bin/$product" --help >/dev/null; done
        chroot --userspec=10001:10001 . /opt/downpour/bin/ps-train --epochs 1 --train-limit 640 --test-limit 100 \
            | grep -E "^(BLAS|data):"' smoke-test "$rootfs" "${products[@]}" >&2; then
        echo "build-image.sh: the executables do not run inside the image's root file system" >&2
        exit 1
    fi
else
    echo "build-image.sh: smoke test skipped (it needs root and mount namespaces)" >&2
fi
echo "root file system: $(du -sh --apparent-size "$rootfs" | cut -f1) in $rootfs" >&2
[ -n "$rootfs_only" ] && exit 0

# 3. The image: FROM scratch, so nothing is pulled.
mkdir -p "$context/home"
revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
cat > "$context/Containerfile" <<EOF
FROM scratch
COPY rootfs/ /
COPY --chown=10001:10001 home/ /home/downpour/
ENV PATH=/opt/downpour/bin HOME=/home/downpour
USER 10001:10001
WORKDIR /home/downpour
LABEL org.opencontainers.image.title="Downpour" \\
      org.opencontainers.image.description="Parameter-server training: ps-server, ps-worker, ps-shard, ps-train and MNIST" \\
      org.opencontainers.image.revision="$revision"
CMD ["ps-server", "--help"]
EOF
# Nothing to pull and nothing to run: no network. Without --layers podman keeps only the final image.
flags=(--network=none)
[ "$(basename "$engine")" = podman ] && flags+=(--pull=never --layers=false)
previous=$("$engine" image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
"$engine" build "${flags[@]}" -t "$tag" -f "$context/Containerfile" "$context" >&2
# The image this one replaces, unless something still uses or names it.
if [ -n "$previous" ] && [ "$previous" != "$("$engine" image inspect --format '{{.Id}}' "$tag")" ]; then
    "$engine" rmi "$previous" >/dev/null 2>&1 || true
fi
size=$("$engine" image inspect --format '{{.Size}}' "$tag")
echo "built $tag: $((size / 1024 / 1024)) MiB" >&2
