"""What a learner's object returns, turned into plain data before anything compares it.

A check never compares the learner's objects themselves: it compares `plain(output)`, a tree of
exact built-in types (bool, int, float, complex, str, None, tuple, list, dict) and plain CPU
tensors. An object whose `__eq__` always says yes, a tensor subclass that overrides
`__torch_function__`, a float subclass: each becomes either honest data (the float's value, the
tensor's elements) or an `Opaque` marker that equals nothing. In the notebook this keeps the
teaching honest; in grading it is what crosses from the sandbox to the grader, stored with
`torch.save` and read back with `torch.load(weights_only=True)`, which refuses pickled code.
"""

from __future__ import annotations

import io

import numpy as np
import torch

MAX_DEPTH = 32
MAX_ITEMS = 1_000_000  # containers' items, all levels together
MAX_TENSOR_BYTES = 512 * 2**20
_TAG = "__primer_data__"  # marks the few values that are not plain containers (arrays, dtypes, opaque)
_EXACT = (bool, int, float, complex, str, type(None))


class Opaque:
    """Stands for an object that is not data (a module, a learner's class instance, ...)."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __eq__(self, other):  # equal to nothing, not even itself: it cannot pass a comparison
        return False

    def __ne__(self, other):
        return True

    __hash__ = object.__hash__

    def __repr__(self):
        return f"<an object of type {self.type_name}>"


class DataError(ValueError):
    """The data is too large, too deep or not of an allowed kind."""


def _type_name(x) -> str:
    t = type(x)
    return t.__name__ if t.__module__ in ("builtins", None) else f"{t.__module__}.{t.__qualname__}"


def _plain_tensor(x: torch.Tensor) -> torch.Tensor | Opaque:
    with torch._C.DisableTorchFunction():  # a subclass's __torch_function__ gets no say
        t = torch.Tensor.detach(x)
        if t.device.type != "cpu" or t.is_quantized:
            return Opaque(f"tensor on {t.device.type}")
        if t.layout != torch.strided:
            t = torch.Tensor.to_dense(t)
        size = t.numel() * t.element_size()
        if size > MAX_TENSOR_BYTES:
            raise DataError(f"a tensor of {size / 2**20:.0f} MB is too large to grade")
        t = torch.Tensor.clone(t, memory_format=torch.contiguous_format)
    return torch.Tensor.as_subclass(t, torch.Tensor)


def plain(x, _depth: int = 0, _count: list | None = None):
    """`x` as plain data (see the module's docstring). Raises DataError only for absurd sizes."""
    count = [0] if _count is None else _count
    count[0] += 1
    if count[0] > MAX_ITEMS or _depth > MAX_DEPTH:
        raise DataError("the output is too large or too deeply nested to grade")
    t = type(x)
    if t in _EXACT:
        return x
    if isinstance(x, torch.Tensor):
        return _plain_tensor(x)
    if isinstance(x, np.ndarray):
        if x.dtype == object or x.dtype.kind not in "biufc":
            return Opaque(f"numpy array of dtype {x.dtype}")
        return np.array(x, copy=True, subok=False)
    if isinstance(x, np.generic):
        return x.item() if x.dtype.kind in "biufc" else Opaque(_type_name(x))
    if isinstance(x, torch.dtype):
        return x
    # Subclasses of the built-in types keep their value, not their behaviour.
    if isinstance(x, bool):
        return bool(x)
    if isinstance(x, int):
        return int.__index__(x)
    if isinstance(x, float):
        return float.__float__(x)
    if isinstance(x, str):
        return str.__str__(x)
    if isinstance(x, tuple):  # namedtuples and torch.Size included
        return tuple(plain(v, _depth + 1, count) for v in tuple.__iter__(x))
    if isinstance(x, list):
        return [plain(v, _depth + 1, count) for v in list.__iter__(x)]
    if isinstance(x, dict):
        return {plain(k, _depth + 1, count): plain(v, _depth + 1, count) for k, v in dict.items(x)}
    return Opaque(_type_name(x))


# --------------------------------------------------------------------------- bytes

def _tagged(x):
    """Plain data → what torch.save(weights_only-loadable) stores: tags for arrays, dtypes, opaque."""
    t = type(x)
    if t in _EXACT or t is torch.Tensor:
        return x
    if t is np.ndarray:
        return {_TAG: "ndarray", "data": torch.from_numpy(x)}
    if t is torch.dtype:
        return {_TAG: "dtype", "name": str(x).removeprefix("torch.")}
    if t is Opaque:
        return {_TAG: "opaque", "type": x.type_name}
    if t is tuple:
        return tuple(_tagged(v) for v in x)
    if t is list:
        return [_tagged(v) for v in x]
    if t is dict:
        return {"__primer_dict__": [(_tagged(k), _tagged(v)) for k, v in x.items()]}
    raise DataError(f"not plain data: {_type_name(x)}")


def _untagged(x, depth: int = 0):
    """The inverse of _tagged, which also refuses anything that plain() cannot have produced."""
    if depth > MAX_DEPTH + 2:
        raise DataError("too deeply nested")
    t = type(x)
    if t in _EXACT:
        return x
    if t is torch.Tensor:
        return torch.Tensor.as_subclass(x, torch.Tensor)
    if t is tuple:
        return tuple(_untagged(v, depth + 1) for v in x)
    if t is list:
        return [_untagged(v, depth + 1) for v in x]
    if t is dict and set(x) == {"__primer_dict__"} and type(x["__primer_dict__"]) is list:
        pairs = x["__primer_dict__"]
        if not all(type(p) is tuple and len(p) == 2 for p in pairs):
            raise DataError("malformed dict")
        return {_untagged(k, depth + 1): _untagged(v, depth + 1) for k, v in pairs}
    if t is dict and type(x.get(_TAG)) is str:
        kind = x[_TAG]
        if kind == "ndarray" and type(x.get("data")) is torch.Tensor:
            return x["data"].numpy()
        if kind == "dtype" and isinstance(getattr(torch, str(x.get("name")), None), torch.dtype):
            return getattr(torch, x["name"])
        if kind == "opaque" and type(x.get("type")) is str:
            return Opaque(x["type"][:200])
    raise DataError(f"unexpected {t.__name__} in the data")


def dumps(tree) -> bytes:
    buffer = io.BytesIO()
    torch.save(_tagged(tree), buffer)
    return buffer.getvalue()


def loads(data: bytes):
    """Read what dumps() wrote, without unpickling anything but data (weights_only=True)."""
    try:
        raw = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # a refused payload, a truncated file: not data
        raise DataError(f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    return _untagged(raw)
