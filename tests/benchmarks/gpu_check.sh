#!/bin/bash
# The GPU checks in one script: CUDA tests of every model (fp32 and bf16), fractional GPUs per fold through
# Ray, and the CUDA benchmarks. Run from the repository root on a machine with a CUDA GPU and moodops
# installed (README's install line, with a CUDA build of torch):
#
#     OUT=gpu-check LIMIT=540 bash tests/benchmarks/gpu_check.sh
#
# Each step has its own time limit, so the script ends within about LIMIT seconds and always leaves
# $OUT/log.txt and $OUT/results.tar (tests/benchmarks/results/ after the run). The last step, a full
# 32-subject LOSO of the default Mood Reader, gets what is left of LIMIT and says how far it got.
#
# STEPS picks and orders the steps (default: all, in this order): tests fractional models mv_sstma
# pretrain packing fanout loso. Issue 17's GPU rows in one call, for example:
#
#     OUT=gpu-check LIMIT=540 STEPS="tests packing fanout loso" bash tests/benchmarks/gpu_check.sh
#
# On a machine that cannot install packages (the workplace's lent GPU machines have their own Python 3.12
# and torch, and no registry), set SITE_TAR to a tar.xz of a `pip install --target` directory holding the
# missing packages for that Python (ray, mlflow, optuna, mne and what they need, minus what the machine
# has): the script unpacks it, puts it and the repository's folders on PYTHONPATH as the `moodops`
# namespace, and writes `moodops` and `ray` launchers beside that python. Results of the run of
# 2026-12-04 (one H200): tests/benchmarks/results/*cuda*.json, fanout-gpu.json, gpu-check-2026-12-04.log.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-gpu-check}
LIMIT=${LIMIT:-540}
mkdir -p "$OUT" /tmp/extra
T0=$(date +%s)
exec > >(tee -a "$OUT/log.txt") 2>&1
el() { echo $(( $(date +%s) - T0 )); }
stamp() { echo "=== [$(el) s] $*"; }
left() { echo $(( LIMIT - $(el) )); }
pack() { tar -cf "$OUT/results.tar" tests/benchmarks/results/ /tmp/extra 2>/dev/null; }
trap pack EXIT

stamp env
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
nproc
if [ -n "${SITE_TAR:-}" ]; then
  stamp "unpack $SITE_TAR"
  mkdir -p /tmp/s && tar -xJf "$SITE_TAR" -C /tmp/s || { echo "unpack failed"; exit 1; }
  mkdir -p /tmp/ns/moodops && for p in components pipelines orchestrator; do ln -sfn "$PWD/$p" /tmp/ns/moodops/$p; done
  export PYTHONPATH=$(ls -d /tmp/s/*/ | head -1):/tmp/ns
  PY=$(python3 -c "import sys; print(sys.executable)"); BIN=$(dirname "$PY")
  printf '#!%s\nimport sys\nfrom moodops.orchestrator.cli import main\nsys.exit(main())\n' "$PY" > "$BIN/moodops"
  printf '#!%s\nimport sys\nfrom ray.scripts.scripts import main\nsys.exit(main())\n' "$PY" > "$BIN/ray"
  chmod +x "$BIN/moodops" "$BIN/ray"
fi
python3 -c "import sys, torch, ray, mlflow, optuna; print(sys.version.split()[0], 'torch', torch.__version__, torch.version.cuda, torch.cuda.is_available(), 'ray', ray.__version__, 'mlflow', mlflow.__version__, 'optuna', optuna.__version__)"

step_tests() {
  stamp "every model and variant on CUDA (fp32 and bf16), the CUDA fold tests, packed training"
  MOODOPS_TEST_DEVICE=cuda timeout 150 python3 -m pytest -q -p no:cacheprovider tests/components/models/test_every_model.py \
    tests/pipelines/test_gpu.py tests/components/models/test_packed.py --durations=8 2>&1 | tail -25
}

step_fractional() {
  stamp "fractional GPUs per fold through Ray (moodops run loso --gpus-per-fold 0.25)"
  timeout 120 python3 -m pytest -q -p no:cacheprovider tests/orchestrator/test_cli_e2e.py -k fractional 2>&1 | tail -15
}

step_models() {
  stamp "bench_models: fp32 and bf16 at the models' default batches, bf16 at batch 1024 (the heavy models)"
  timeout 90 python3 tests/benchmarks/bench_models.py --device cuda --seconds 1 --in-process > /tmp/extra/models-fp32.out 2>&1
  cat /tmp/extra/models-fp32.out
  timeout 90 python3 tests/benchmarks/bench_models.py --device cuda --seconds 1 --in-process --precision bf16 \
    > /tmp/extra/models-bf16.out 2>&1
  cat /tmp/extra/models-bf16.out
  timeout 60 python3 tests/benchmarks/bench_models.py --device cuda --seconds 1 --in-process --precision bf16 \
    --batch-size 1024 --only mv_sstma dfcn mood_reader 2>&1
}

step_mv_sstma() {
  stamp "bench_mv_sstma_speed cuda"
  timeout 60 python3 tests/benchmarks/bench_mv_sstma_speed.py --label cuda --device cuda --seconds 2 2>&1 | tail -5
}

step_pretrain() {
  stamp "bench_pretrain cuda fp32, bf16"
  for p in fp32 bf16; do
    timeout 40 python3 tests/benchmarks/bench_pretrain.py --device cuda --epochs 3 --segments 8192 --batch-size 256 \
      --precision $p 2>&1 | tail -3
  done
}

step_packing() {
  stamp "bench_packing cuda: 8 folds alone vs packed, batch 32 and 256 (issue 17)"
  timeout 150 python3 tests/benchmarks/bench_packing.py --device cuda --folds 8 --epochs 3 2>&1 | tail -12
}

step_fanout() {
  stamp "bench_fanout: 8 subjects, mood_reader stib_cf, 3 epochs, 0.125 GPU per fold, 1 and 8 parallel; then packed (auto)"
  timeout 150 python3 tests/benchmarks/bench_fanout.py --subjects 8 --epochs 3 --gpus-per-fold 0.125 --parallel 1,8 2>&1 \
    | grep -v '^ '
  timeout 120 python3 tests/benchmarks/bench_fanout.py --subjects 8 --epochs 3 --gpus-per-fold 0.125 --parallel 1 \
    --folds-per-task auto 2>&1 | grep -v '^ '
}

step_loso() {
  stamp "full 32-subject synthetic DEAP LOSO, default mood_reader, 0.25 GPU per task, folds packed (auto), against its FLOP floor (what is left of ${LIMIT} s)"
  timeout $(( $(left) > 20 ? $(left) : 20 )) python3 tests/benchmarks/bench_loso.py --device cuda \
    --extra "--gpus-per-fold 0.25 --folds-per-task auto" 2>&1 | grep -v '^ ' | tail -30
  echo "loso rc=${PIPESTATUS[0]}"
}

for s in ${STEPS:-tests fractional models mv_sstma pretrain packing fanout loso}; do
  "step_$s"
done
stamp done
