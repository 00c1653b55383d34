#!/usr/bin/env bash
# The GPU measurements #13 still needs, ready for a session that is lent a GPU machine. Each step fits one call
# of the device tool (at most 10 minutes); run them in this order and keep what each writes under $OUT:
#
#   bash benchmarks/gpu_session.sh tests      # the GPU tests: the CUDA kernels and the engine on CUDA (1-2 min)
#   bash benchmarks/gpu_session.sh bench      # #13's target itself first, `fig3 --device cuda --trials 1000000`
#                                             # as a whole command (< 60 s), timed by bash; then the kernels'
#                                             # rates and fig3 at 10^5, 10^6 and (within 300 s) 10^7 trials
#                                             # in-process (~8 min in all)
#   bash benchmarks/gpu_session.sh ensembles  # fig3 for every attention ensemble at 40,000 trials (~3 min)
#   bash benchmarks/gpu_session.sh lanes      # lanes per matrix and the kernels' profile (~2 min)
#   bash benchmarks/gpu_session.sh all        # the four in that order, in one command (~15 min: for a GPU
#                                             # machine without the device tool's 10-minute limit per call)
#
# Copy what comes back into benchmarks/measured/ (gpu-h100*.json, gpu-h100*.txt) and quote it in README's
# Performance section. pytest runs with 8 workers where pytest-xdist is installed, else in one process
# (-o addopts=-ra: the suite's own -n auto would fail without xdist, and would open a CUDA context per core).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-session}
mkdir -p "$out"
python=${PYTHON:-python3}
"$python" - <<'EOF'
import torch
if not torch.cuda.is_available():
    raise SystemExit("gpu_session.sh: no CUDA device here; these steps measure the GPU")
print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
EOF
step() {
case "$1" in
  tests)
    workers=$("$python" -c "import xdist" 2>/dev/null && echo "-n 8" || echo "")  # 8 CUDA contexts fit easily
    "$python" -m pytest -o addopts=-ra -p no:cacheprovider $workers tests/test_hqr.py tests/test_simulations.py \
      tests/test_resume.py tests/test_lockstep.py tests/test_random.py tests/test_transformer_figures.py \
      2>&1 | tee "$out/gpu-tests.txt"
    ;;
  bench)  # #13's target first (a call cut at 600 s keeps it), then the sizes, 10^7 only if it fits 300 s
    { time "$python" -m simulations fig3 --device cuda --trials 1000000 --out "$out/fig3-cuda" --no-progress; } \
      2>&1 | tee "$out/gpu-bench.txt"
    "$python" benchmarks/bench_gpu.py --trials 100000,1000000,10000000 --budget 300 --ensembles 0 \
      --json "$out/gpu-bench.json" 2>&1 | tee -a "$out/gpu-bench.txt"
    ;;
  ensembles)
    "$python" benchmarks/bench_gpu.py --trials 100000 --ensembles 40000 --json "$out/gpu-ensembles.json" 2>&1 \
      | tee "$out/gpu-ensembles.txt"
    ;;
  lanes)
    "$python" benchmarks/bench_hqr_lanes.py --json "$out/gpu-lanes.json" 2>&1 | tee "$out/gpu-lanes.txt"
    "$python" benchmarks/profile_gpu.py 2>&1 | tee "$out/gpu-profile.txt"
    ;;
  *)
    echo "usage: bash benchmarks/gpu_session.sh tests|bench|ensembles|lanes|all   (see the comment at the top)" >&2
    exit 2
    ;;
esac
}
if [ "${1:-}" = all ]; then
  for name in tests bench ensembles lanes; do
    echo "== gpu_session.sh $name" | tee -a "$out/gpu-session.txt"
    step "$name"
  done
else
  step "${1:-}"
fi
