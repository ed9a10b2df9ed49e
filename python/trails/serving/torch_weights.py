"""A ``torch.save``'d ``state_dict`` (what ``trails.models.weights`` stores for an MLP) read
into numpy arrays without importing torch.

The file is a zip archive: ``<root>/data.pkl`` pickles the dict, each tensor as
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` with its storage a
persistent id ``("storage", torch.<Type>Storage, key, location, numel)`` whose bytes are
``<root>/data/<key>`` (little-endian). The unpickler here admits exactly those globals and an
``OrderedDict``; anything else is refused, so stored bytes cannot run code.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile

import numpy as np

from trails.errors import TrailsError

STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                  "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
                  "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}
"""Storage classes a state_dict of ours holds → their numpy dtype (bfloat16 is not stored)."""


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *_ignored) -> np.ndarray:
    """A tensor's array: ``size`` elements of ``storage`` from ``offset`` with ``stride`` — a
    copy, after checking that every element lies inside the storage (the bytes are data, not
    trusted: a view past its end would read memory that is not the tensor's).

    Raises:
        pickle.UnpicklingError: for a shape, stride or offset that does not fit the storage.
    """
    size, stride = tuple(int(n) for n in size), tuple(int(step) for step in stride)
    if offset < 0 or len(size) != len(stride) or min(size, default=0) < 0 or min(stride, default=0) < 0:
        raise pickle.UnpicklingError(f"a tensor of size {size}, stride {stride}, offset {offset}")
    if min(size, default=1) > 0 and offset + sum((n - 1) * step for n, step in zip(size, stride)) >= len(storage):
        raise pickle.UnpicklingError(f"a tensor of size {size} reaching past its storage of {len(storage)}")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(step * item for step in stride))
    return np.array(view)


class _StateUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` of the archive: tensors and their storages only."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, root: str):
        super().__init__(io.BytesIO(data))
        self.archive, self.root = archive, root

    def find_class(self, module: str, name: str):
        """The admitted globals (module docstring); anything else is refused."""
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in STORAGE_DTYPES:
            return name
        raise pickle.UnpicklingError(f"stored weights hold {module}.{name}, which a state_dict of ours does not")

    def persistent_load(self, pid):
        """A storage's bytes, as a 1-d array of its dtype."""
        kind, storage_type, key, _location, numel = pid
        if kind != "storage" or storage_type not in STORAGE_DTYPES:
            raise pickle.UnpicklingError(f"unexpected storage {kind!r} of type {storage_type!r}")
        raw = self.archive.read(f"{self.root}/data/{key}")
        return np.frombuffer(raw, dtype=np.dtype(STORAGE_DTYPES[storage_type]).newbyteorder("<"), count=numel)


def read_state(data: bytes) -> dict[str, np.ndarray]:
    """``{name: array}`` of a ``torch.save``'d dict of CPU tensors, as torch would load it.

    Raises:
        TrailsError: when ``data`` is not such a file (or holds anything else).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
        pickled = next(name for name in archive.namelist() if name.endswith("/data.pkl"))
        root = pickled[: -len("/data.pkl")]
        if archive.namelist().count(f"{root}/byteorder") and archive.read(f"{root}/byteorder") != b"little":
            raise pickle.UnpicklingError("big-endian weights")
        state = _StateUnpickler(archive.read(pickled), archive, root).load()
    except (zipfile.BadZipFile, StopIteration, pickle.UnpicklingError, KeyError, ValueError, TypeError,
            EOFError, AttributeError, IndexError) as error:
        raise TrailsError(f"the stored weights are not a state_dict trails can read: {error}",
                          hint="the model's family and its weights disagree; store the model again") from None
    return dict(state)
