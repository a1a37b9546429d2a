"""Training (the ``train`` step). :mod:`.launch` is the launcher the step calls (one process,
or one per GPU through torchrun); :mod:`.process` is what each training process runs;
:mod:`.hf_trainer` configures transformers' Trainer; :mod:`.plan` plans micro-batches, memory
and throughput levers; :mod:`.checkpoints` saves, finds and resumes checkpoints."""
