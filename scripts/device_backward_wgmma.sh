#!/usr/bin/env bash
# The backward's wgmma build on a GPU in one device call (issue 14): each build's gradients
# against fp64 first (tests/gpu/test_gpu_backward.py), then the kernels of the builds that
# passed against mma.sync's and FlexAttention's (benchmarks/bench_backward_kernels.py).
#
#   scripts/device_backward_wgmma.sh pack     # here, where MLIR is: writes .device/bwd.tar.gz
#   # on the GPU machine, from the repository root (carry .device/bwd.tar.gz):
#   tar xzf .device/bwd.tar.gz -C /tmp && scripts/device_backward_wgmma.sh run
#   # or in two device calls (each under the call's time limit): "test", then "bench"
#
# Builds (label:instruction:row tile height): the mma.sync default, wgmma on 64-row tiles
# (one warpgroup) and on 128-row tiles (two warpgroups; head dims up to 128). The run writes
# one log per build's GPU test and the benchmark's rows (saved after each row) under $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILDS="sync:mma_sync:64 wgmma:wgmma:64 wgmma128:wgmma:128"
PATTERNS=${PATTERNS:-window,blocked,dilated,strided}

case "${1:-}" in
pack)
    PY=${PY:-.venv/bin/python}
    rm -rf .device/bwd && mkdir -p .device/bwd
    for build in $BUILDS; do
        IFS=: read -r label mma block_m <<< "$build"
        heads=64,128,256
        [ "$block_m" = 128 ] && heads=64,128
        "$PY" scripts/pack_backward_kernels.py --mma "$mma" --block-m "$block_m" \
            --head-dims "$heads" --out ".device/bwd/kernels-$label" > /dev/null
        "$PY" scripts/pack_gpu_artifacts.py --bench --backward --backward-mma "$mma" \
            --backward-block-m "$block_m" --families "$PATTERNS" --lengths 4096 \
            --head-dims 64,128 --out ".device/bwd/bench-$label" > /dev/null
    done
    tar czf .device/bwd.tar.gz -C .device bwd
    ls -l .device/bwd.tar.gz
    ;;
test|run)
    # each build's GPU test; the labels that passed go to $OUT/passed (read by "bench")
    OUT=${OUT:-/tmp/out}
    ROOT=${BWD_ROOT:-/tmp/bwd}
    mkdir -p "$OUT"
    export PYTHONPATH=python
    : > "$OUT/passed"
    for build in $BUILDS; do
        IFS=: read -r label _ _ <<< "$build"
        if SPLAT_BACKWARD_DIR="$ROOT/kernels-$label" timeout 150 python -m pytest -m gpu -q \
                -p no:cacheprovider tests/gpu/test_gpu_backward.py > "$OUT/gpu-$label.log" 2>&1; then
            echo "$label" >> "$OUT/passed"
        fi
        tail -n 3 "$OUT/gpu-$label.log"
    done
    echo "builds that passed: $(tr '\n' ' ' < "$OUT/passed")"
    if [ "$1" = run ]; then exec "$0" bench; fi
    ;;
bench)
    # the builds that passed "test" (or $BUILDS_PASSED, labels separated by spaces), timed
    # against each other and Flex; rows are saved one by one, so a cut-off call keeps them
    OUT=${OUT:-/tmp/out}
    ROOT=${BWD_ROOT:-/tmp/bwd}
    export PYTHONPATH=python
    packs=""
    for label in ${BUILDS_PASSED:-$(cat "$OUT/passed" 2>/dev/null)}; do
        packs="${packs:+$packs,}$label=$ROOT/bench-$label"
    done
    [ -n "$packs" ] || { echo "no build passed its GPU test: nothing to time"; exit 1; }
    timeout 420 python benchmarks/bench_backward_kernels.py --packs "$packs" \
        --patterns "$PATTERNS" --flex --out-json "$OUT/bwd-kernels.json"
    ;;
*)
    echo "usage: $0 pack|run|test|bench" >&2
    exit 2
    ;;
esac
