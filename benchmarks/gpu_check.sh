#!/usr/bin/env bash
# One run on a CUDA machine: install bpgpu from this checkout (pure-Python dependencies
# from local wheels in .whl/, since that machine has no network), then the `gpu` tests,
# `bpgpu backends`, `bpgpu check`, the benchmarks and the kernel launches per step.
# Everything goes to one folder.
#
#   bash benchmarks/gpu_check.sh [RESULTS_DIR]      (default: $OUT, else benchmarks/results/gpu)
#
# Wheels for a machine without network, fetched beforehand on one with it:
#   pip download --no-deps -d .whl array-api-compat array-api-strict tqdm \
#       hypothesis attrs sortedcontainers
# (and carry .whl/ along). CuPy, NumPy, torch and pytest must already be there.
#
# Exit status: non-zero when any step failed; every step runs regardless.
set -uo pipefail
cd "$(dirname "$0")/.."
RES="${1:-${OUT:-benchmarks/results/gpu}}"
mkdir -p "$RES"
PY="${PYTHON:-python3}"
status=0
step() {  # step NAME COMMAND...: run, keep output in $RES/NAME.txt, remember a failure
    local name=$1
    shift
    echo "== $name: $*"
    local t0=$SECONDS
    "$@" >"$RES/$name.txt" 2>&1
    local rc=$?
    echo "   exit $rc after $((SECONDS - t0)) s" | tee -a "$RES/$name.txt"
    [ "$rc" -eq 0 ] || status=1
    return 0
}

if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --target /tmp/bpgpu-site .whl/*.whl
    export PYTHONPATH="/tmp/bpgpu-site${PYTHONPATH:+:$PYTHONPATH}"
fi
step install "$PY" -m pip install -q --no-deps --no-build-isolation -e .

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(hostname)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 |
        sed 's/^/gpu: /'
    "$PY" - <<'PYEOF'
import importlib
for mod in ("numpy", "cupy", "torch", "array_api_compat", "array_api_strict", "bpgpu"):
    try:
        print(f"{mod}: {importlib.import_module(mod).__version__}")
    except Exception as e:  # report, do not stop
        print(f"{mod}: unavailable ({type(e).__name__}: {e})")
try:
    import cupy
    rt = cupy.cuda.runtime
    print(f"cuda runtime: {rt.runtimeGetVersion()}  driver api: {rt.driverGetVersion()}")
except Exception as e:
    print(f"cuda: unavailable ({e})")
try:
    import torch
    print(f"torch cuda: {torch.version.cuda}  tf32 matmul: {torch.backends.cuda.matmul.allow_tf32}")
except Exception:
    pass
PYEOF
} >"$RES/device.txt" 2>&1
cat "$RES/device.txt"

step backends "$PY" -m bpgpu backends
# BPGPU_REQUIRE_GPU=1: a GPU backend that cannot load fails its tests instead of skipping
BPGPU_REQUIRE_GPU=1 step pytest_gpu "$PY" -m pytest -m gpu -q -p no:cacheprovider
step check "$PY" -m bpgpu check --backends numpy,cupy,torch:cuda -o "$RES/check.md"
# GPU peers only, short rounds: the device time of a session is counted in minutes
step bench "$PY" -m benchmarks --out "$RES" --tag gpu --min-time 1 --repeat 3 \
    --peers "bpgpu[cupy],bpgpu-nometrics[cupy],bpgpu[torch:cuda],torch-eager[cuda],gemm-floor[cupy:cuda],gemm-floor[torch:cuda]"
step launches "$PY" -m bpgpu.bench.launches --workloads small,mnist --out "$RES"
echo "results in $RES (status $status)"
exit "$status"
