#!/usr/bin/env bash
# Downloads the Debian 12 packages a GPU machine without internet needs to build mobilenet
# against its own (pip) LibTorch, and unpacks them into a prefix inside the repository:
#   .device-deps/debs/      the .deb files (apt-get download; no root, nothing installed)
#   .device-deps/prefix/    dpkg -x of each, minus docs: headers, CMake configs, shared libs
# scripts/device_check.sh puts the prefix on CMAKE_PREFIX_PATH. The folder is ignored by git;
# the device tool carries it (`carry: [".device-deps"]`, 64 MiB at most), so it is kept small.
# Usage: scripts/fetch_device_deps.sh [--clean]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/.device-deps
[[ ${1:-} == --clean ]] && rm -rf "$dir"

# What the device lacks besides LibTorch: the data component's libraries (with their runtime
# .so), header-only Eigen / CLI11 / doctest, Gloo's headers (c10d's ProcessGroupGloo.hpp
# includes them; pip wheels may not ship them) and nlohmann-json (some LibTorch 2.x c10d
# headers include it without shipping it). zlib: CMake's FindPNG requires it.
packages=(
  libsimdjson-dev libsimdjson14
  libjpeg62-turbo-dev libjpeg62-turbo libturbojpeg0-dev libturbojpeg0
  libpng-dev libpng16-16 zlib1g-dev zlib1g
  libeigen3-dev libcli11-dev doctest-dev
  libgloo-dev nlohmann-json3-dev
)

mkdir -p "$dir/debs"
missing=()
for p in "${packages[@]}"; do
  compgen -G "$dir/debs/${p}_*.deb" >/dev/null || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[fetch_device_deps] downloading: ${missing[*]}"
  (cd "$dir/debs" && apt-get download "${missing[@]}")
fi

# A fresh prefix each time, so a package dropped from the list does not linger.
rm -rf "$dir/prefix"
mkdir -p "$dir/prefix"
for deb in "$dir"/debs/*.deb; do
  dpkg -x "$deb" "$dir/prefix"
done
# Only what a build needs: no docs, man pages, examples or static libraries.
rm -rf "$dir/prefix/usr/share/doc" "$dir/prefix/usr/share/man" "$dir/prefix/usr/share/lintian" \
       "$dir/prefix/usr/share/doc-base"
find "$dir/prefix" -name '*.a' -delete

# Gloo: headers only (LibTorch has its own Gloo compiled in; linking Debian's would clash).
rm -rf "$dir"/prefix/usr/lib/libgloo* "$dir"/prefix/usr/lib/x86_64-linux-gnu/libgloo* \
       "$dir/prefix/usr/share/cmake/Gloo"
# Debian links some libraries absolutely (libz.so -> /lib/...): point them into the prefix,
# where the device will find them.
while IFS= read -r link; do
  target=$(readlink "$link")
  [[ -e $dir/prefix$target ]] || { echo "[fetch_device_deps] $link -> $target: not in the prefix" >&2; exit 1; }
  ln -sfn "$(realpath --relative-to="$(dirname "$link")" "$dir/prefix$target")" "$link"
done < <(find "$dir/prefix" -type l -lname '/*')

# Sanity: each dependency the project's CMake looks for is there.
for f in usr/lib/x86_64-linux-gnu/cmake/simdjson/simdjson-config.cmake \
         usr/lib/x86_64-linux-gnu/cmake/libjpeg-turbo/libjpeg-turboConfig.cmake \
         usr/include/png.h usr/include/zlib.h usr/include/gloo/config.h \
         usr/include/nlohmann/json.hpp usr/include/doctest/doctest.h \
         usr/include/CLI/CLI.hpp usr/include/eigen3/Eigen/Core \
         usr/lib/x86_64-linux-gnu/libsimdjson.so usr/lib/x86_64-linux-gnu/libturbojpeg.so \
         usr/lib/x86_64-linux-gnu/libjpeg.so usr/lib/x86_64-linux-gnu/libpng.so; do
  [[ -e $dir/prefix/$f ]] || { echo "[fetch_device_deps] missing after unpacking: $f" >&2; exit 1; }
done
while IFS= read -r link; do
  echo "[fetch_device_deps] dangling link: $link -> $(readlink "$link")" >&2
  exit 1
done < <(find "$dir/prefix" -xtype l)

echo "[fetch_device_deps] prefix: $dir/prefix ($(du -sh "$dir/prefix" | cut -f1)); debs $(du -sh "$dir/debs" | cut -f1)"
echo "[fetch_device_deps] carry '.device-deps/prefix' (the debs are not needed on the device)"
