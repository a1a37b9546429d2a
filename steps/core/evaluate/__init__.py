"""Evaluation (the ``evaluate`` step). :mod:`.compare` generates with the base and the tuned
model and scores both into one :class:`~.metrics_document.MetricsDocument` (``metrics.json``);
:mod:`.report` shows it (HTML, summary lines, the model card's table). Under it:
:mod:`.generation` (batched greedy generation), :mod:`.grading` (is an answer right?),
:mod:`.text_metrics` (BLEU, chrF, ROUGE) and :mod:`.uncertainty` (intervals, paired tests)."""
