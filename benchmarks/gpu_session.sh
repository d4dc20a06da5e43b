#!/usr/bin/env bash
# One prepared GPU session (a lent machine with a CUDA GPU, no registry, no Ray): the Table 1 runs of
# bench_table1.py on the GPU for JOB_SECONDS (each run checkpoints every epoch; unfinished ones resume
# anywhere with `python benchmarks/bench_table1.py`), then the timing benchmarks with --device cuda on a
# quiet GPU. Everything it writes goes into $OUT/session.tgz (run folders, JSON, logs).
#
#   prepared beside the repo: .whl/ (this package's wheel, snntorch, nir, nirtorch wheels, norse's
#   pure-Python package folder) and .t1/ti46_alpha/ (the TI46-Alpha npz); both git-ignored, carried.
set -u
JOB_SECONDS=${JOB_SECONDS:-400}
BENCH_SECONDS=${BENCH_SECONDS:-120}
export PYTHONUNBUFFERED=1 TORCHINDUCTOR_COMPILE_THREADS=1 OMP_NUM_THREADS=1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" logs runs
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
    || exit 1
cp -r .whl/norse /tmp/site/
export PYTHONPATH=/tmp/site
ROOT=.t1/ti46_alpha
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > logs/gpu.txt 2>&1
(cd /tmp && python3 -c "import torch, snn_motifs, snntorch, norse; print(torch.__version__, torch.cuda.get_device_name())") \
    > logs/versions.txt 2>&1
cat logs/gpu.txt logs/versions.txt

# 1. Table 1: every (method, seed) as its own process on the GPU (no Ray on this machine)
for m in hrmas_tssl hrmas_atan random dense; do
    for s in 0 1 2; do
        timeout -s INT "$JOB_SECONDS" python3 benchmarks/bench_table1.py --sequential --only "$m/seed$s" \
            --device cuda --ti46-root "$ROOT" --out runs/bench_table1 --json runs/bench_table1.json \
            > "logs/table1_${m}_${s}.log" 2>&1 &
    done
done
wait
tail -n 3 logs/table1_*.log

# 2. timing on a quiet GPU, our kernels against snnTorch and Norse in the same run
timeout "$BENCH_SECONDS" python3 benchmarks/bench_hrmas_timing.py --device cuda --compile --n 800 \
    --steps 100 --batch 50 --options 5,10,16,25,40 --repeats 3 --json logs/bench_hrmas_timing_cuda.json \
    > logs/bench_hrmas_timing_cuda.log 2>&1
timeout "$BENCH_SECONDS" python3 benchmarks/bench_scml.py --device cuda --no-scaling --repeats 5 \
    --json logs/bench_scml_cuda.json > logs/bench_scml_cuda.log 2>&1
tail -n 25 logs/bench_hrmas_timing_cuda.log logs/bench_scml_cuda.log
tar czf "$OUT/session.tgz" logs runs
ls -la "$OUT"
