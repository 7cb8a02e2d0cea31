"""One package per paper (``reprosuite.papers.<id>``); each registers itself on import.

A paper's ``__init__`` holds only declarations (config dataclass, experiments, artifacts) and
must stay cheap to import: heavy libraries are imported inside the functions it references.
"""
