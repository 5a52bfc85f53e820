"""The inference runtime: from a user's window to recommendations and ad candidates.

- ``registry``: model versions on disk, the CURRENT pointer, hot swap, A/B split
- ``session``: the ONNX Runtime session (CUDA when a GPU answers, CPU otherwise)
- ``windows``: external item ids <-> the model's indices, padded index arrays
- ``batcher``: the asyncio micro-batcher (max size / max wait, per-user coalescing)
- ``engine``: one batch of users -> filtered, explained recommendations and ad candidates
- ``postfilter``, ``popularity``, ``ads``, ``freqcap``: the pure pieces behind it
- ``testing``: small random models honouring the ONNX contract, for tests and benches
"""
