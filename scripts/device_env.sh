# Sourced by the scripts/device_*.sh runners on the GPU machine: $OUT (the folder that comes back),
# $D (the carried binary folder, DEVBUILD or .devgpu) and the library path for its shared libraries.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
D=${DEVBUILD:-.devgpu}
[ -f "$D/lib/libopenblas.so.0" ] || xz -dc "$D/lib/libopenblas.so.0.xz" > "$D/lib/libopenblas.so.0"
export LD_LIBRARY_PATH="$PWD/$D/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
