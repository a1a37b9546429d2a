"""Data (the ``load_data`` step): the JSONL example schema (:mod:`.examples`) and the
DVC-tracked dataset, split and chat-rendered (:mod:`.dataset`)."""
