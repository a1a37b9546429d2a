#!/usr/bin/env bash
# One prepared run for a lent GPU machine (no network): training throughput at Qwen3-1.7B shapes
# (random weights built from the config), every arm in its own process and its own time limit,
# so one failing arm does not lose the others. ~4-5 minutes on an H200. Results land in $OUT
# (or bench/results/): train_cot.txt (the table), train_cot.json, arm_<name>.log per arm.
#   (a) baseline      a plain Trainer: padded to max_length, random order, no levers; the recipe's
#                     T4 settings (fp16, micro-batch 4 x accumulation 4, gradient checkpointing)
#   (b) t4            the recipe as shipped, at its T4 settings: grouped batches, liger-kernel
#   (c) t4-plain      (b) without liger-kernel (the recipe before this change)
#   (d) best          micro-batch and gradient checkpointing from the memory estimate (H200: 16,
#                     none), liger-kernel
#   (e) t4+packing    (b) with padding-free packed batches (sdpa: a dense block-diagonal mask)
#   (f) best+flex     (d) with packed batches on flex_attention (a block-sparse mask)
#   (g) best+compile  (d) with torch.compile
# Arms run in this order; one that would start after 290 s (under 30 s left of 320) is skipped.
# Packages the GPU image lacks travel as wheels in .whl/ (see docs/benchmarks.md):
# liger-kernel, pydantic and its dependencies. EVAL=1 also runs the evaluation benchmark.
set -uo pipefail
out=${OUT:-bench/results}; mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch, transformers, peft, triton; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'triton', triton.__version__)" | tee -a "$out/gpu.txt"
python3 -c "import liger_kernel, importlib.metadata as m; print('liger-kernel', m.version('liger-kernel'))" 2>&1 | tail -1 | tee -a "$out/gpu.txt"

recipe=pipelines/configs/nizami-1.7b.yaml
t4='"batch_size": 4, "grad_accum": 4, "gradient_checkpointing": true, "auto_micro_batch": false'
best='"gradient_checkpointing": "auto", "auto_micro_batch": true, "liger_kernel": true'
off='"packing": false, "liger_kernel": false, "group_by_length": false, "pad_to_max_length": true'
timeout 340 python3 bench/train_throughput.py --shape qwen3-1.7b --config $recipe --total-timeout 320 \
  --examples "${EXAMPLES:-160}" --lengths cot --arm-timeout "${ARM_TIMEOUT:-100}" \
  --log-dir "$out" --json "$out/train_cot.json" \
  --arm "baseline:{$t4, $off}" \
  --arm "t4:{$t4, \"packing\": false, \"liger_kernel\": true}" \
  --arm "t4-plain:{$t4, \"packing\": false, \"liger_kernel\": false}" \
  --arm "best:{$best, \"packing\": false}" \
  --arm "t4+packing:{$t4, \"packing\": true, \"liger_kernel\": true}" \
  --arm "best+flex:{$best, \"packing\": true, \"attn_implementation\": \"flex_attention\"}" \
  --arm "best+compile:{$best, \"packing\": false, \"torch_compile\": true}" \
  2>&1 | tee "$out/train_cot.txt"
if [ "${EVAL:-0}" = 1 ]; then
  python3 bench/eval_throughput.py --model qwen3-1.7b --examples 50 --batch-size 25 \
    --max-new-tokens 32 --json "$out/eval.json" 2>&1 | tee "$out/eval.log"
fi
