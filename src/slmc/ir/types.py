"""Element types and tensor types of the IR. Only what C can store statically."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class DType(Enum):
    F32 = ("f32", "float", np.float32)
    F64 = ("f64", "double", np.float64)
    I8 = ("i8", "int8_t", np.int8)
    U8 = ("u8", "uint8_t", np.uint8)
    I16 = ("i16", "int16_t", np.int16)
    U16 = ("u16", "uint16_t", np.uint16)
    I32 = ("i32", "int32_t", np.int32)
    U32 = ("u32", "uint32_t", np.uint32)
    I64 = ("i64", "int64_t", np.int64)
    U64 = ("u64", "uint64_t", np.uint64)
    BOOL = ("bool", "uint8_t", np.bool_)

    def __init__(self, short: str, c: str, np_type: type) -> None:
        self.short = short
        self.c = c
        self.np = np.dtype(np_type)

    @property
    def size(self) -> int:
        return self.np.itemsize

    @property
    def is_float(self) -> bool:
        return self in (DType.F32, DType.F64)

    @staticmethod
    def from_numpy(dt: np.dtype) -> "DType":
        dt = np.dtype(dt)
        for d in DType:
            if d.np == dt:
                return d
        raise ValueError(f"no IR dtype for numpy {dt}")

    def __repr__(self) -> str:
        return self.short


@dataclass(frozen=True)
class TensorType:
    shape: tuple[int, ...]
    dtype: DType

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.size

    def __str__(self) -> str:
        return f"{self.dtype.short}[{','.join(map(str, self.shape))}]"
