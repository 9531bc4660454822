#!/usr/bin/env bash
# Builds the httvps-ffi library and generates its Kotlin, Swift and Python bindings.
#   sdk/ffi/generate-bindings.sh [OUT_DIR]     (default: $CARGO_TARGET_DIR or target, /bindings)
# OUT_DIR/{kotlin,swift,python} receive the bindings; the library is copied next to the Python
# module so `import httvps_ffi` works from OUT_DIR/python. Nothing here is committed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
out="${1:-$target/bindings}"
cd "$root"
# One build for both: the library and the generator (the `bindgen` feature only adds the
# generator's dependencies; an app's release build of the library leaves it off).
"${CARGO:-cargo}" build --locked -p httvps-ffi --features bindgen
case "$(uname -s)" in
  Darwin) lib="$target/debug/libhttvps_ffi.dylib" ;;
  *) lib="$target/debug/libhttvps_ffi.so" ;;
esac
test -f "$lib" || { echo "generate-bindings: $lib was not built" >&2; exit 1; }
for language in kotlin swift python; do
  rm -rf "${out:?}/$language"
  "$target/debug/uniffi-bindgen" generate --library "$lib" --language "$language" \
    --out-dir "$out/$language" --no-format
done
cp "$lib" "$out/python/"
echo "bindings in $out"
