"""A merged decoder, as Optimum writes it (`decoder_model_merged.onnx`): the decoder without past and the one
with past keys and values in one file, an `If` on a boolean graph input (`use_cache_branch`) choosing between
them: then_branch runs with the past, else_branch without. Both take the same inputs (the past may be empty) and
give the same outputs (logits, present.N.key / .value).

slmc reads a decoder with its past bound to nothing (onnx_past.py), which is the with-past branch at past 0,
so the `If` is replaced by that branch: its nodes and initializers move into the main graph (a valid model
defines each name once, in the branches too), Identity nodes give its outputs the `If`'s names, and the
boolean input goes. Any other use of control flow is left alone (onnx_import.py refuses it in one line).
"""

from __future__ import annotations

import onnx


def inline_cache_branch(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with a merged decoder's `If` replaced by its with-past branch; `model` itself otherwise."""
    g = model.graph
    ifs = [n for n in g.node if n.op_type == "If"]
    flags = {i.name for i in g.input if i.type.tensor_type.elem_type == onnx.TensorProto.BOOL}
    if len(ifs) != 1 or not ifs[0].input or ifs[0].input[0] not in flags:
        return model
    node = ifs[0]
    branch = next((a.g for a in node.attribute if a.name == "then_branch" and a.type == onnx.AttributeProto.GRAPH),
                  None)
    cond = node.input[0]
    if branch is None or len(branch.output) != len(node.output) or any(
            cond in n.input for n in g.node if n is not node):
        return model
    # the branch may name its outputs as the If names its own (the exporters do): those become the graph's values;
    # any other name the branch shares with the main graph, or defines twice, leaves the model as it is
    same = {b.name for b, o in zip(branch.output, node.output) if b.name == o}
    outer = {i.name for i in g.input} | {t.name for t in g.initializer} | {o for n in g.node for o in n.output}
    inner = [t.name for t in branch.initializer] + [o for n in branch.node for o in n.output]
    if (outer & set(inner)) - same or len(set(inner)) != len(inner):
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    og = out.graph
    at = list(g.node).index(node)
    del og.node[:]
    nodes = list(g.node[:at])
    nodes += list(branch.node)
    nodes += [onnx.helper.make_node("Identity", [b.name], [o], name=f"{node.name or 'If'}/{o}")
              for b, o in zip(branch.output, node.output) if b.name != o]
    nodes += list(g.node[at + 1:])
    og.node.extend(nodes)
    og.initializer.extend(branch.initializer)
    keep = [i for i in og.input if i.name != cond]
    del og.input[:]
    og.input.extend(keep)
    return out
