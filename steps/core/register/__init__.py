"""Registration (the ``register`` step): the quality gate's rule (:mod:`.quality_gate`) and what
the step hands on (:mod:`.registration`)."""
