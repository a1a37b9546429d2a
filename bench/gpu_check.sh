#!/usr/bin/env bash
# One prepared run for a lent GPU machine: training and evaluation throughput at Qwen3-1.7B
# shapes (random weights built from the config). Results land in $OUT (or bench/results/).
set -uo pipefail
out=${OUT:-bench/results}; mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then  # packages the GPU image lacks (pydantic), carried as wheels
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)" | tee -a "$out/gpu.txt"
recipe=pipelines/configs/nizami-1.7b.yaml
for lengths in cot data; do
  python3 bench/train_throughput.py --shape qwen3-1.7b --config $recipe --examples "${EXAMPLES:-256}" \
    --lengths $lengths --json "$out/train_$lengths.json" 2>&1 | tee "$out/train_$lengths.log"
done
python3 bench/eval_throughput.py --model qwen3-1.7b --examples 50 --batch-size 25 \
  --max-new-tokens 32 --json "$out/eval.json" 2>&1 | tee "$out/eval.log"
