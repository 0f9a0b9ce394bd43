"""Upper bounds on what configuration or an untrusted file may make the library allocate.

Kept in a module without dependencies, so the CLI can validate options against them before
anything heavy is imported. README "Limits" documents each one.
"""

from __future__ import annotations

__all__ = [
    "MAX_CHUNK_SIZE",
    "MAX_POOL_SIZE",
    "MAX_SERVE_PROCESSES",
    "MAX_SKOPS_MEMBER_BYTES",
    "MAX_SKOPS_SCHEMA_BYTES",
    "MAX_SKOPS_TOTAL_BYTES",
    "MAX_WORKERS",
]

#: Model instances in one pool at most. Each instance is a full copy of the model (and for
#: ONNX its own thread pool); on the machines this runs on, more than a few per core only
#: costs memory. A config asking for 100,000 used to load until memory ran out.
MAX_POOL_SIZE = 64

#: Processes ``serve --processes`` starts at most. Each loads its own pools: more processes
#: than cores only multiplies the memory of the models.
MAX_SERVE_PROCESSES = 64

#: A ``.skops`` file is a zip archive; these bound what its members may expand to *before*
#: anything is decompressed. ``schema.json`` is parsed into Python objects (about ten times
#: its size in memory); the arrays of a large forest are the other members.
MAX_SKOPS_SCHEMA_BYTES = 64 << 20
MAX_SKOPS_MEMBER_BYTES = 1 << 30
MAX_SKOPS_TOTAL_BYTES = 1 << 30

#: Rows per chunk at most (16 Mi rows: a chunk of 20 float features is then ~1.3 GiB). A
#: value beyond a bound is a typo or an attack (an overflow deep inside pyarrow), refused
#: before anything is loaded.
MAX_CHUNK_SIZE = 1 << 24

#: Scoring threads at most.
MAX_WORKERS = 256
