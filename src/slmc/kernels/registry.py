"""One registry entry per C kernel (DESIGN.md rule 3): the op and dtypes it implements, the ISA it
needs, its C file, how a call is written, the scratch it needs and the MACs it performs.

Adding an operator touches three places: a C file in kernels/c, an entry here (or in a sibling
module that calls `register`), and a numpy twin in reference/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from slmc.errors import SlmcError
from slmc.ir import DType, Node

C_DIR = Path(__file__).parent / "c"


class CallContext(Protocol):
    """What a kernel's emitter may ask of the code generator."""

    def ref(self, i: int) -> str: ...          # C expression for input i (pointer, or "NULL")
    def out(self, i: int = 0) -> str: ...      # C expression for output i
    def weight(self, i: int) -> str: ...       # constant input i by its own symbol, never a layer table's row
    def scratch(self) -> str: ...              # C expression for this node's scratch
    @property
    def rows(self) -> str: ...                 # valid rows at run time (token count)
    @property
    def pos(self) -> str: ...                  # position of the first token
    # an integer attribute as C: a literal, or (in a layer loop) the table entry of an attribute that
    # differs from layer to layer (codegen/layers.py); wide: an int64_t expression
    def attr(self, key: str, wide: bool = False) -> str: ...


@dataclass(frozen=True)
class KernelSpec:
    op: str
    dtype: DType                                # element type of the first input
    c_file: str
    emit: Callable[[Node, CallContext], str]
    isa: str = "any"                            # "any", or an ISA feature the target must have
    scratch: Callable[[Node], int] = field(default=lambda n: 0)
    macs: Callable[[Node], int] = field(default=lambda n: 0)
    deps: tuple[str, ...] = ()                  # other C files it calls into
    where: Callable[[Node], bool] = field(default=lambda n: True)  # a further condition (e.g. the KV cache's type)
    tiling: object | None = None                # geometric tiling constraints (kernels/tiles.py); None: not tiled
    overlap: Callable[[Node], tuple] = field(default=lambda n: ())  # kernels/overlap.py: outputs that may lie over consumed inputs
    engine: str = "cores"                       # what runs it: the cores, or a target's "npu" (plan/engines.py reads it)
    # how it treats the rows of a batched step (passes/batch.py): "rows": row s of each output depends only on
    # row s of each activation input and on constants shared by every row, so rows of different sequences run
    # in one call, reading each weight once; "of:<op>": the per-row form of <op> (which reads the step's
    # position or KV cache), taking each row's own position and KV slot; "": not in a batched step
    batch: str = ""
    # a multi-row kernel of a batched step (kernels/batch_linear.py): reads each weight once for several rows;
    # preferred over a kernel of the same ISA rank where both apply
    shared_rows: bool = False

    @property
    def path(self) -> Path:
        return C_DIR / self.c_file


REGISTRY: list[KernelSpec] = []


def register(spec: KernelSpec) -> KernelSpec:
    REGISTRY.append(spec)
    return spec


def select(node: Node, isa_features: frozenset[str]) -> KernelSpec:
    """The most specific kernel for this node on a target with these ISA features."""
    first = next((v for v in node.inputs if v is not None), None)
    dtype = first.dtype if first is not None else node.outputs[0].dtype
    cands = [k for k in REGISTRY if k.op == node.op and k.dtype == dtype and (k.isa == "any" or k.isa in isa_features)
             and k.where(node)]
    if not cands:
        raise SlmcError(f"no C kernel for operator '{node.op}' on {dtype.short} data",
                        "this operator/type combination is not supported yet")
    return max(cands, key=lambda k: (k.isa != "any", k.shared_rows))


def _load_all() -> None:
    from slmc.kernels import link, llm, llm_features, moe  # noqa: F401
    from slmc.kernels import int_llm, onnx, onnx_index, onnx_spatial  # noqa: F401
    from slmc.kernels import deeploy  # noqa: F401
    from slmc.kernels import onnx_quant  # noqa: F401  (QDQ and QOperator models)
    from slmc.kernels import onnx_quant_lut  # noqa: F401  (their lookup-table and scalar-loop operators)
    from slmc.kernels import onnx_ort  # noqa: F401  (onnxruntime-exact LayerNormalization, Erf, Gelu)
    from slmc.kernels import npu  # noqa: F401  (the NPU's functional model, layout="npu" only)
    from slmc.kernels import batch  # noqa: F401  (the per-row kernels of a batched step)
    from slmc.kernels import batch_linear  # noqa: F401  (the multi-row matrix products of a batched step)
    from slmc.kernels import native  # noqa: F401  (host-native: the build machine's vector ISA)
    from slmc.kernels import ffn_pair  # noqa: F401  (q8/int8 FFN pair, row-streamed products: wrap the kernels above)


_load_all()
