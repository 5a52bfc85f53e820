"""An ONNX Runtime session over one model graph: provider choice, options, scoring.

onnxruntime-gpu lists the CUDA provider whether or not a GPU exists, and asking for it on a
machine without a driver logs an error before falling back. So CUDA is requested only when
the driver really answers with at least one device (checked through libcuda, no CUDA
toolkit needed); otherwise only the CPU provider is asked for.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
# Left padding is trimmed to one of these lengths (when the graph's window axis is dynamic),
# and a batch is split by them so short windows are not padded to the longest one.
LENGTH_BUCKETS = (8, 16, 32)
# A bucket whose rows would add fewer padded positions than this to the next bucket joins
# it: a run's fixed cost outweighs them. Measured on the int8 benchmark graph (width 64,
# 2 layers): ~80-100 µs a run, and ~1.25 µs a row for each position of its width.
MERGE_POSITIONS = 64
# On CPUs a run scores at most this many window positions (rows x width): a larger run's
# activations ([rows, width, 4 x dim] in the feed-forward step) leave the caches between
# steps. Measured on the int8 benchmark graph (width 64, 2 layers), full windows of 50, one
# thread: 114 µs a user in one run of 1,024 rows, 98 in runs of 256, 85-88 in runs of
# 32-128; two threads: 90, 59 and 55-59 in runs of 96-128. With real windows (most under
# 16 items) batches of 256 and 1,024 were as fast split this way as not.
RUN_POSITIONS = 6400

Scores = tuple[np.ndarray, np.ndarray, np.ndarray]  # top_items, top_scores, user_vec


@functools.cache
def cuda_device_count() -> int:
    """Devices the CUDA driver reports; 0 when there is no driver or no GPU."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    return 0


def choose_providers(available: list[str] | None = None,
                     gpu_count: int | None = None) -> list[str]:
    """CUDA first when its provider is built in and a GPU answers; else the CPU alone."""
    available = ort.get_available_providers() if available is None else available
    gpus = cuda_device_count() if gpu_count is None else gpu_count
    if CUDA in available and gpus > 0:
        return [CUDA, CPU]
    return [CPU]


_logged_provider: set[str] = set()


def _log_provider_once(provider: str) -> None:
    if provider not in _logged_provider:
        _logged_provider.add(provider)
        log.info("ONNX Runtime runs on %s", provider)


def session_options(threads: int) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads  # 0: ORT's default, one per physical core
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # warnings about unused initialisers are noise here
    # Idle pool threads would otherwise spin after each run and take the CPU the event loop
    # and the post-filters need right then (measured: the host side ran ~2x slower).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class ModelSession:
    """Scores encoded windows with one graph; thread-safe (ORT sessions allow concurrent runs)."""

    def __init__(self, path: Path, threads: int = 0, providers: list[str] | None = None) -> None:
        self.path = Path(path)
        self.session = ort.InferenceSession(
            str(path), session_options(threads), providers=providers or choose_providers()
        )
        self.provider = self.session.get_providers()[0]
        _log_provider_once(self.provider)
        self.on_gpu = self.provider == CUDA
        seq = self.session.get_inputs()[0]
        self.max_len = seq.shape[1] if isinstance(seq.shape[1], int) else None
        # None: the window axis is dynamic, so padding can be trimmed per length bucket

    @property
    def dynamic_len(self) -> bool:
        return self.max_len is None

    def run(self, item_seq: np.ndarray, event_type: np.ndarray, exclude: np.ndarray) -> Scores:
        """One call into the graph with arrays as the contract defines them."""
        feeds = {"item_seq": item_seq, "event_type": event_type, "exclude": exclude}
        if not self.on_gpu:
            top_items, top_scores, user_vec = self.session.run(None, feeds)
            return top_items, top_scores, user_vec
        binding = self.session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array))
        for out in ("top_items", "top_scores", "user_vec"):
            binding.bind_output(out, "cpu")  # small outputs: K ids, K scores, D floats
        self.session.run_with_iobinding(binding)
        top_items, top_scores, user_vec = binding.copy_outputs_to_cpu()
        return top_items, top_scores, user_vec

    def score(self, item_seq: np.ndarray, event_type: np.ndarray, exclude: np.ndarray,
              lengths: np.ndarray | None = None) -> Scores:
        """Score a batch; results are in the input's row order. With a dynamic window axis,
        rows are grouped by length and each group is trimmed of its common left padding; on
        CPUs a group is also split into runs of at most RUN_POSITIONS positions.

        On a GPU the batch stays one run, trimmed to its longest window's bucket: there a
        run's fixed cost (launches, copies) outweighs the padded positions (measured on an
        H200: splitting a batch of 64 by bucket cost ~2.7 ms against ~0.7 ms for one run).
        """
        n, full = item_seq.shape
        groups: list[tuple[np.ndarray | None, int]] = [(None, full)]  # (rows: None = all, width)
        if self.dynamic_len and lengths is not None:
            bounds = [b for b in LENGTH_BUCKETS if b < full] + [full]
            bucket = merge_small_buckets(np.searchsorted(bounds, np.maximum(lengths, 1)), bounds)
            if self.on_gpu:
                groups = [(None, bounds[int(bucket.max())])]
            else:
                found = np.unique(bucket)
                groups = ([(None, bounds[int(found[0])])] if len(found) == 1 else
                          [(np.flatnonzero(bucket == b), bounds[b]) for b in found])
        runs: list[tuple[slice | np.ndarray, int]] = []
        for rows, width in groups:
            count = n if rows is None else len(rows)
            step = max(1, count if self.on_gpu else RUN_POSITIONS // width)
            runs += [(slice(start, start + step) if rows is None else rows[start:start + step],
                      width) for start in range(0, count, step)]
        if len(runs) <= 1:
            width = groups[0][1]
            return self.run(item_seq[:, full - width:], event_type[:, full - width:], exclude)
        out: list[np.ndarray] = []
        for part, width in runs:
            scored = self.run(item_seq[part, full - width:], event_type[part, full - width:],
                              exclude[part])
            if not out:
                out = [np.empty((n, *a.shape[1:]), dtype=a.dtype) for a in scored]
            for target, a in zip(out, scored, strict=True):
                target[part] = a
        return out[0], out[1], out[2]


def merge_small_buckets(bucket: np.ndarray, bounds: list[int]) -> np.ndarray:
    """``bucket`` (each row's index into ``bounds``) with the rows of a small bucket moved
    up into the next bucket that has rows, shortest first, while they would add fewer than
    ``MERGE_POSITIONS`` padded positions there: one run less. A micro-batch of a few users
    (live traffic at a low rate) spreads over most buckets, one or two users in some."""
    counts = np.bincount(bucket, minlength=len(bounds))
    moved = bucket.copy()
    for b in range(len(bounds) - 1):
        above = np.flatnonzero(counts[b + 1:])
        if not counts[b] or not above.size:
            continue
        target = b + 1 + int(above[0])
        if counts[b] * (bounds[target] - bounds[b]) < MERGE_POSITIONS:
            moved[moved == b] = target
            counts[target] += counts[b]
            counts[b] = 0
    return moved
