"""The scoring thread's steps after the model, as ONNX Runtime graphs: each row's first
``top_k`` candidates that the catalog's rules and the diversity cap allow
(``postfilter.first_allowed``), and for each of them the window item that explains it
(``postfilter.nearest_sources``).

Why graphs: in numpy these steps are some thirty operations. Each holds the GIL for its
Python part, and numpy lets go of it for each one over more than a few hundred elements;
the scoring thread then waits for the busy event loop to hand it back (up to the switch
interval each time), and the loop waits in turn while the thread holds it. One call into
a graph takes and gives the GIL once. Measured at 4,000 events/s (bench_worker), batches
alternating between the two within one run, 1,800 batches of ~40 users each: the scoring
step took 4.94 ms a batch with the graphs against 5.32 ms with numpy, for the same CPU
(3.47 against 3.56 ms). Sampled by which thread held the GIL, the scoring thread held it
~10% of the time, a third of that in these numpy steps. With a thread standing in for
the loop (busy 0.8 ms in every 1 ms), they take ~0.65 ms a batch of 40 as graphs against
~1.35 ms in numpy (~0.45 ms either way alone).

The numpy functions in ``inference.postfilter`` define what these compute; the tests hold
the graphs to them. Neither graph depends on a model: the item vectors, the catalog's
arrays and the rules come in with every call (ONNX Runtime reads numpy inputs in place, so
that costs no copy), so one session of each serves every model version. They run on the
CPU with one thread, also on a GPU machine: the arrays are small.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from inference.postfilter import CatalogView
from inference.session import CPU, session_options

OPSET = 17
IR_VERSION = 8  # the IR version of opset 17

_INT64 = TensorProto.INT64


class _Graph:
    """Builds one graph: ``op`` adds a node and returns the name of its (first) output."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.constants: list[Any] = []
        self._count = 0

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs: Any) -> Any:
        self._count += 1
        names = [f"{op_type.lower()}_{self._count}_{k}" for k in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names

    def const(self, value: Any, dtype: Any) -> str:
        name = f"const_{len(self.constants)}"
        self.constants.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def session(self, inputs: list[Any], outputs: list[tuple[str, str, int]]) -> Any:
        """An ONNX Runtime session of the graph; ``outputs``: (node output, name, type)."""
        for source, name, _ in outputs:
            self.nodes.append(helper.make_node("Identity", [source], [name]))
        graph = helper.make_graph(
            self.nodes, "postfilter", inputs,
            [helper.make_tensor_value_info(name, kind, None) for _, name, kind in outputs],
            self.constants)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  ir_version=IR_VERSION)
        return ort.InferenceSession(model.SerializeToString(), session_options(1),
                                    providers=[CPU])


def _sources(g: _Graph, cand: str, seq: str, events: str, units: str) -> tuple[str, str]:
    """``nearest_sources`` of candidates ``cand`` [B, C] in windows ``seq`` [B, W]."""
    zero = g.const(0, np.int64)
    known = g.op("Not", g.op("Equal", seq, zero))  # [B, W]
    sims = g.op("MatMul", g.op("Gather", units, cand),  # [B, C, D] x [B, D, W]
                g.op("Transpose", g.op("Gather", units, seq), perm=[0, 2, 1]))
    ax1, ax2 = g.const([1], np.int64), g.const([2], np.int64)
    sims = g.op("Where", g.op("Unsqueeze", known, ax1), sims, g.const(-np.inf, np.float32))
    # more than one distinct item in the window: then an item is not its own source
    newest = g.op("Slice", seq, g.const([-1], np.int64), g.const([np.iinfo(np.int64).max],
                                                                  np.int64), ax1)
    other = g.op("And", known, g.op("Not", g.op("Equal", seq, newest)))
    several = g.op("Cast", g.op("ReduceMax", g.op("Cast", other, to=TensorProto.INT32),
                                axes=[1], keepdims=1), to=TensorProto.BOOL)  # [B, 1]
    seq_wide = g.op("Unsqueeze", seq, ax1)  # [B, 1, W]
    itself = g.op("And", g.op("Equal", g.op("Unsqueeze", cand, ax2), seq_wide),
                  g.op("Unsqueeze", several, ax2))
    sims = g.op("Where", itself, g.const(-2.0, np.float32), sims)
    nearest = g.op("ArgMax", sims, axis=2, keepdims=0)  # the first of equals, as numpy's
    sources = g.op("GatherElements", seq, nearest, axis=1)  # [B, C]
    # the strongest event with the source item anywhere in the window
    same = g.op("Equal", seq_wide, g.op("Unsqueeze", sources, ax2))  # [B, C, W]
    codes = g.op("ReduceMax", g.op("Where", same, g.op("Unsqueeze", events, ax1), zero),
                 axes=[2], keepdims=0)
    none = g.op("Equal", cand, zero)
    return g.op("Where", none, zero, sources), g.op("Where", none, zero, codes)


def _first_allowed(g: _Graph, items: str, scores: str, allowed: str, category: str,
                   top_k: str, cap: str) -> tuple[str, str]:
    """``first_allowed``: the columns [B, min(C, top_k)] and the allowed count [B]."""
    zero = g.const(0, np.int64)
    ax1, ax2 = g.const([1], np.int64), g.const([2], np.int64)
    valid = g.op("And", g.op("And", g.op("Greater", items, zero),
                             g.op("Greater", scores, g.const(-np.inf, np.float32))),
                 g.op("Gather", allowed, items))
    width = g.op("Shape", items, start=1, end=2)  # [1]: C
    places = g.op("Range", zero, g.op("Squeeze", width), g.const(1, np.int64))  # [C]
    # the diversity cap: how many allowed candidates of the same category rank higher (a
    # comparison of every pair, [B, C, C]: C is the graph's K, a few dozen)
    cat = g.op("Gather", category, items)
    counted = g.op("And", valid, g.op("GreaterOrEqual", cat, g.const(0, np.int32)))
    higher = g.op("Less", g.op("Unsqueeze", places, g.const([0], np.int64)),
                  g.op("Unsqueeze", places, ax1))  # [i, j]: j ranks above i
    same = g.op("Equal", g.op("Unsqueeze", cat, ax2), g.op("Unsqueeze", cat, ax1))
    above = g.op("ReduceSum", g.op("Cast", g.op("And", g.op("And", same, higher),
                                                g.op("Unsqueeze", counted, ax1)),
                                   to=TensorProto.INT32), ax2, keepdims=0)
    capped = g.op("Less", above, g.op("Cast", cap, to=TensorProto.INT32))
    valid = g.op("And", valid, g.op("Or", g.op("Equal", cap, zero), capped))
    valid = g.op("And", valid, g.op("LessOrEqual", g.op("CumSum", g.op(
        "Cast", valid, to=_INT64), g.const(1, np.int64)), top_k))
    # the allowed columns first, each group in rank order: keys are distinct, so the order
    # is exact
    key = g.op("Add", g.op("Mul", g.op("Cast", g.op("Not", valid), to=_INT64), width), places)
    k = g.op("Min", width, g.op("Reshape", top_k, g.const([1], np.int64)))
    _, columns = g.op("TopK", key, k, axis=1, largest=0, sorted=1, outputs=2)
    counts = g.op("ReduceSum", g.op("Cast", valid, to=_INT64), ax1, keepdims=0)
    return columns, counts


def _tensor(name: str, kind: int, shape: list[Any]) -> Any:
    return helper.make_tensor_value_info(name, kind, shape)


@functools.cache
def _picks_session() -> Any:
    g = _Graph()
    columns, counts = _first_allowed(g, "top_items", "top_scores", "allowed", "category",
                                     "top_k", "cap")
    items = g.op("GatherElements", "top_items", columns, axis=1)
    scores = g.op("GatherElements", "top_scores", columns, axis=1)
    sources, codes = _sources(g, items, "item_seq", "event_type", "units")
    return g.session(
        [_tensor("top_items", _INT64, ["B", "C"]),
         _tensor("top_scores", TensorProto.FLOAT, ["B", "C"]),
         _tensor("allowed", TensorProto.BOOL, ["N"]),
         _tensor("category", TensorProto.INT32, ["N"]),
         _tensor("top_k", _INT64, []), _tensor("cap", _INT64, []),
         _tensor("item_seq", _INT64, ["B", "W"]), _tensor("event_type", _INT64, ["B", "W"]),
         _tensor("units", TensorProto.FLOAT, ["N", "D"])],
        [(columns, "columns", _INT64), (counts, "counts", _INT64), (items, "items", _INT64),
         (scores, "scores", TensorProto.FLOAT), (sources, "sources", _INT64),
         (codes, "codes", _INT64)])


@functools.cache
def _sources_session() -> Any:
    g = _Graph()
    sources, codes = _sources(g, "cand", "item_seq", "event_type", "units")
    return g.session(
        [_tensor("cand", _INT64, ["B", "C"]), _tensor("item_seq", _INT64, ["B", "W"]),
         _tensor("event_type", _INT64, ["B", "W"]),
         _tensor("units", TensorProto.FLOAT, ["N", "D"])],
        [(sources, "sources", _INT64), (codes, "codes", _INT64)])


def _window_feeds(item_seq: np.ndarray, event_type: np.ndarray, longest: int,
                  unit_embeddings: np.ndarray) -> dict[str, np.ndarray]:
    """The windows' inputs of both graphs: only the columns that hold any row's items
    (windows are left-padded; at least one), and the item vectors."""
    window = slice(item_seq.shape[1] - max(1, min(longest, item_seq.shape[1])), None)
    return {"item_seq": np.ascontiguousarray(item_seq[:, window]),
            "event_type": np.ascontiguousarray(event_type[:, window]),
            "units": np.asarray(unit_embeddings, dtype=np.float32)}


def first_picks(top_items: np.ndarray, top_scores: np.ndarray, view: CatalogView, top_k: int,
                cap: int, item_seq: np.ndarray, event_type: np.ndarray, longest: int,
                unit_embeddings: np.ndarray) -> tuple[np.ndarray, ...]:
    """``first_allowed`` for a batch of the graph's candidates, then the chosen columns'
    items, scores and ``nearest_sources``, in one call: (columns, counts, items, scores,
    sources, codes). ``longest``: the most known items in any row's window."""
    out = _picks_session().run(None, {
        "top_items": np.ascontiguousarray(top_items, dtype=np.int64),
        "top_scores": np.ascontiguousarray(top_scores, dtype=np.float32),
        "allowed": view.allowed, "category": view.category,
        "top_k": np.array(top_k, dtype=np.int64), "cap": np.array(cap, dtype=np.int64),
        **_window_feeds(item_seq, event_type, longest, unit_embeddings)})
    return tuple(out)


def sources_of(cand: np.ndarray, item_seq: np.ndarray, event_type: np.ndarray, longest: int,
               unit_embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``nearest_sources`` in one call (``longest`` as for ``first_picks``)."""
    if not cand.size:
        return np.zeros(cand.shape, dtype=np.int64), np.zeros(cand.shape, dtype=np.int64)
    sources, codes = _sources_session().run(None, {
        "cand": np.ascontiguousarray(cand, dtype=np.int64),
        **_window_feeds(item_seq, event_type, longest, unit_embeddings)})
    return sources, codes
