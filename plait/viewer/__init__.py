"""The run viewer: one self-contained HTML page per run (``plait view``)."""
