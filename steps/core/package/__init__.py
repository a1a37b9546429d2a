"""Serve-side helpers (the ``package`` step): the merged model directory that serving consumes
(:mod:`.merging`). The service itself is ``bento/``, which never imports this package."""
