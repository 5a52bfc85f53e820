"""Writing the served graph to ONNX, its fp16 and int8 variants, and the parity check.

The graph (``model.Recommender``) takes ``item_seq`` and ``event_type`` [B, L] and
``exclude`` [B, E], and returns ``top_items`` and ``top_scores`` [B, K] and ``user_vec``
[B, D]. B, L (up to max_len) and E are dynamic: callers may send windows shorter than
max_len to save work on short histories.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from export.model import Recommender, SeqRec

log = logging.getLogger(__name__)

INPUTS = ("item_seq", "event_type", "exclude")
OUTPUTS = ("top_items", "top_scores", "user_vec")
OPSET = 17
# fp32 graph vs eager PyTorch: same maths, different kernels and summation order.
PARITY_ATOL = 1e-4


def export_fp32(model: SeqRec, path: Path, top_k: int) -> Recommender:
    """Export the eval-mode graph; returns the eager module that was exported."""
    model.eval()
    graph = Recommender(model, top_k).eval()
    length = model.cfg.max_len
    example = (torch.ones(2, length, dtype=torch.int64), torch.ones(2, length, dtype=torch.int64),
               torch.zeros(2, 3, dtype=torch.int64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about Python values; none apply here
        torch.onnx.export(
            graph, example, str(path), input_names=list(INPUTS), output_names=list(OUTPUTS),
            dynamic_axes={"item_seq": {0: "B", 1: "L"}, "event_type": {0: "B", 1: "L"},
                          "exclude": {0: "B", 1: "E"}, "top_items": {0: "B"},
                          "top_scores": {0: "B"}, "user_vec": {0: "B"}},
            opset_version=OPSET, dynamo=False)
    return graph


def export_fp16(src: Path, dst: Path) -> None:
    """Weights and arithmetic in fp16 for GPUs; inputs and outputs keep their types."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))


def export_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantisation of the matrix multiplications, for CPUs."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantiser reports every tensor it skips on the root logger; that is not news here.
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)


def session(path: Path, device: str = "cpu"):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), options, providers=providers)


@dataclass
class Parity:
    batch: int
    max_abs_diff: float  # largest difference over top_scores and user_vec
    same_items: bool  # top_items identical, up to ties within the tolerance

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= PARITY_ATOL and self.same_items


def check_parity(graph: Recommender, path: Path, feeds: dict[str, np.ndarray]) -> Parity:
    """Run one batch through eager PyTorch and ONNX Runtime and compare every output."""
    with torch.no_grad():
        eager = [t.numpy() for t in graph(*(torch.from_numpy(feeds[n]) for n in INPUTS))]
    onnx_out = session(path).run(list(OUTPUTS), feeds)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(eager[1:], onnx_out[1:], strict=True))
    # Equal items, or swapped neighbours whose scores tie within the tolerance.
    mismatch = eager[0] != onnx_out[0]
    same = bool(not mismatch.any() or np.all(
        np.abs(eager[1][mismatch] - onnx_out[1][mismatch]) <= PARITY_ATOL * 10))
    return Parity(batch=len(feeds["item_seq"]), max_abs_diff=diff, same_items=same)
