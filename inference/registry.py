"""The model registry: read the CURRENT pointer, load a version, hot-swap, A/B split.

Layout (shared contract): ``<dir>/<version>/{model.onnx, item_embeddings.npy,
metadata.json}`` and ``<dir>/CURRENT`` holding the current version's folder name, replaced
atomically. A swap is one attribute assignment: a batch that already picked a model keeps
its reference and finishes on it; the old version is freed when the last batch lets go.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.metadata import ModelMetadata, read_metadata
from inference.session import CUDA, ModelSession, choose_providers
from inference.windows import ItemIndex
from shopstream.config import Settings

log = logging.getLogger(__name__)

CURRENT = "CURRENT"


class RegistryError(RuntimeError):
    """The registry has no usable current version."""


def write_current(model_dir: Path, version: str) -> None:
    """Point CURRENT at ``version`` atomically (temp file in the same dir, then replace)."""
    model_dir = Path(model_dir)
    if not (model_dir / version / "metadata.json").is_file():
        raise RegistryError(f"{model_dir / version} is not a model version folder")
    fd, tmp = tempfile.mkstemp(dir=model_dir, prefix=".CURRENT.")
    with os.fdopen(fd, "w") as fh:
        fh.write(version + "\n")
    os.replace(tmp, model_dir / CURRENT)


def read_current(model_dir: Path) -> str:
    try:
        name = (Path(model_dir) / CURRENT).read_text().strip()
    except FileNotFoundError:
        raise RegistryError(f"no {CURRENT} file in {model_dir}: publish a model first") from None
    if not name or "/" in name or name.startswith("."):
        raise RegistryError(f"{model_dir / CURRENT} does not name a version folder")
    return name


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """One model version, ready to score: session, id mapping and item vectors."""

    metadata: ModelMetadata
    session: ModelSession
    index: ItemIndex
    embeddings: np.ndarray  # float32 [N+1, D], row 0 padding
    unit_embeddings: np.ndarray = field(repr=False)  # rows scaled to length 1 (0 stays 0)

    @property
    def version(self) -> str:
        return self.metadata.version


def _variant_file(meta: ModelMetadata, wanted: str, on_gpu: bool) -> str:
    if wanted == "auto":
        # int8 on CPUs: about a third less time a user than fp32 for < 0.0001 NDCG@10 lost
        # (bench/bench_inference.py, bench/bench_model_quality.py)
        preferred = "fp16" if on_gpu else "int8"
        wanted = preferred if preferred in meta.variants else "fp32"
    if wanted not in meta.variants:
        raise RegistryError(f"version {meta.version} has no {wanted} variant "
                            f"(has {sorted(meta.variants)})")
    return meta.variants[wanted]


def load_version(model_dir: Path, version: str, settings: Settings,
                 providers: list[str] | None = None) -> LoadedModel:
    folder = Path(model_dir) / version
    meta = read_metadata(folder)
    providers = providers or choose_providers()
    graph = folder / _variant_file(meta, settings.model_variant, providers[0] == CUDA)
    session = ModelSession(graph, threads=settings.ort_threads, providers=providers)
    if session.max_len is not None and session.max_len != meta.max_len:
        raise RegistryError(f"{graph.name} takes windows of {session.max_len}, "
                            f"metadata says max_len {meta.max_len}")
    embeddings = np.load(folder / "item_embeddings.npy").astype(np.float32, copy=False)
    if embeddings.shape != (len(meta.item_ids), meta.dim):
        raise RegistryError(f"item_embeddings.npy is {embeddings.shape}, metadata says "
                            f"({len(meta.item_ids)}, {meta.dim})")
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = embeddings / np.where(norms > 0, norms, 1.0)
    return LoadedModel(meta, session, ItemIndex(meta.item_ids), embeddings, unit)


def ab_bucket(user_id: str) -> float:
    """A stable number in [0, 1) per user: the same on every worker and every restart."""
    digest = hashlib.blake2b(user_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class ModelRegistry:
    """The models a worker serves: the current one, and optionally an A/B candidate."""

    def __init__(self, settings: Settings, providers: list[str] | None = None) -> None:
        self.settings = settings
        self.model_dir = Path(settings.model_dir)
        self._providers = providers
        self._stamp: tuple[int, int, int] | None = None
        self._lock = threading.Lock()  # one load at a time
        self.current = self._load(read_current(self.model_dir))
        self.candidate: LoadedModel | None = None
        if settings.ab_version and settings.ab_share > 0:
            self.candidate = self._load(settings.ab_version)
        self._stamp = self._pointer_stamp()

    def _load(self, version: str) -> LoadedModel:
        model = load_version(self.model_dir, version, self.settings, self._providers)
        log.info("model %s loaded (%d items, L=%d, K=%d)", model.version,
                 model.metadata.n_items, model.metadata.max_len, model.metadata.top_k)
        return model

    def _pointer_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.model_dir / CURRENT)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def pick(self, user_id: str) -> tuple[LoadedModel, str]:
        """The model for this user and its variant name ("A" current, "B" candidate)."""
        candidate = self.candidate
        if candidate is not None and ab_bucket(user_id) < self.settings.ab_share:
            return candidate, "B"
        return self.current, "A"

    def refresh(self) -> bool:
        """Load the version CURRENT names if it changed; True when a new one was swapped in.

        Cheap when nothing changed (one stat). Blocking: call it from a background thread.
        A version that fails to load is logged and the old one keeps serving.
        """
        stamp = self._pointer_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        with self._lock:
            self._stamp = stamp
            try:
                name = read_current(self.model_dir)
                if name == self.current.version:
                    return False
                model = self._load(name)
            except Exception:
                log.exception("could not load the new current model; keeping %s",
                              self.current.version)
                return False
            old, self.current = self.current.version, model
        log.info("model swapped: %s -> %s", old, model.version)
        return True


class RegistryWatcher:
    """A daemon thread that calls ``registry.refresh()`` every ``interval_s`` seconds."""

    def __init__(self, registry: ModelRegistry, interval_s: float) -> None:
        self.registry = registry
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="model-watcher", daemon=True)

    def start(self) -> RegistryWatcher:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.registry.refresh()
