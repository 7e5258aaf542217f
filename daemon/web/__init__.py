"""The door's page: a live view, the status, the recent decisions and labelling.

An optional part of the door service (``[web] enabled``, ``--web ADDR:PORT``),
served by the standard library's threading HTTP server from the frames the door
already reads. It holds no reference to the latch: nothing it serves can open
the door. :mod:`.keys` (the ``[web]`` config keys) is all the config loads from
here; the server itself is imported only when the page is enabled.
"""
