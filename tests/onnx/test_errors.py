"""Error paths: ONNX files are untrusted input (bad protobufs, unsupported ops and opsets,
dangling names, inconsistent shapes, external data outside the model's folder all get an
OnnxError naming the problem), and export refuses unmappable graphs before writing a file."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import framework as fw
from framework.jit.ir import Graph, TensorSpec
from framework.jit.symbolic import SymInt
from framework.onnx import OnnxError


def _model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _x(shape=("batch", 4)):
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))


def _y(shape=None):
    return helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)


def _save(tmp_path, model, name="m.onnx"):
    p = tmp_path / name
    p.write_bytes(model.SerializeToString())
    return p


def test_unsupported_ops_are_listed_with_node_and_opset(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="ok"),
             helper.make_node("Hardmax", ["a"], ["b"], name="hm"),
             helper.make_node("Foo", ["b"], ["y"], name="custom", domain="com.example")]
    m = _model(nodes, [_x()], [_y()])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(OnnxError) as e:
        fw.onnx.load(_save(tmp_path, m))
    msg = str(e.value)
    assert "Hardmax" in msg and "'hm'" in msg and "opset 17" in msg
    assert "com.example::Foo" in msg and "'custom'" in msg
    assert "ok" not in msg.replace("opset", "")


def test_unsupported_attribute_is_refused(tmp_path):
    node = helper.make_node("Relu", ["x"], ["y"], name="r", frobnicate=1)
    with pytest.raises(OnnxError, match=r"unsupported attribute\(s\) \['frobnicate'\]"):
        fw.onnx.to_graph(_save(tmp_path, _model([node], [_x()], [_y()])))


@pytest.mark.parametrize("data", [b"", b"\x00\x01garbage\xff" * 10, b"\x0a\xff\xff\xff\xff\x0f"])
def test_malformed_protobuf(data, tmp_path):
    p = tmp_path / "bad.onnx"
    p.write_bytes(data)
    with pytest.raises(OnnxError, match="not a valid ONNX model"):
        fw.onnx.to_graph(p)


def test_truncated_file(tmp_path):
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_x()], [_y()])
    data = m.SerializeToString()
    with pytest.raises(OnnxError):
        fw.onnx.to_graph(data[: len(data) // 2])


def test_missing_file(tmp_path):
    with pytest.raises(OnnxError, match="cannot read"):
        fw.onnx.to_graph(tmp_path / "nope.onnx")


@pytest.mark.parametrize("opset", [9, 12, 99])
def test_opset_out_of_range(opset, tmp_path):
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_x()], [_y()], opset=opset)
    with pytest.raises(OnnxError, match=f"opset {opset} is not supported"):
        fw.onnx.to_graph(_save(tmp_path, m))


def test_dangling_input_name(tmp_path):
    node = helper.make_node("Add", ["x", "ghost"], ["y"], name="add0")
    with pytest.raises(OnnxError, match=r"'add0'.*'ghost' is not defined"):
        fw.onnx.to_graph(_save(tmp_path, _model([node], [_x()], [_y()])))


def test_undefined_graph_output(tmp_path):
    node = helper.make_node("Relu", ["x"], ["a"])
    with pytest.raises(OnnxError, match="'y' is not produced"):
        fw.onnx.to_graph(_save(tmp_path, _model([node], [_x()], [_y()])))


def test_inconsistent_matmul_shapes(tmp_path):
    w = numpy_helper.from_array(np.ones((5, 3), np.float32), "w")
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    with pytest.raises(OnnxError, match="'mm'"):
        fw.onnx.to_graph(_save(tmp_path, _model([node], [_x()], [_y()], [w])))


def test_declared_output_shape_mismatch(tmp_path):
    node = helper.make_node("Relu", ["x"], ["y"])
    with pytest.raises(OnnxError, match="declared with shape"):
        fw.onnx.to_graph(_save(tmp_path, _model([node], [_x()], [_y(["batch", 7])])))


def test_initializer_data_size_mismatch(tmp_path):
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    w.raw_data = w.raw_data[:-4]
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    with pytest.raises(OnnxError, match="initializer 'w'"):
        fw.onnx.to_graph(_save(tmp_path, _model([node], [_x()], [_y()], [w])))


def test_unsupported_dtype(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["batch", 4])
    node = helper.make_node("Relu", ["x"], ["y"])
    with pytest.raises(OnnxError, match="FLOAT16 is not supported"):
        fw.onnx.to_graph(_save(tmp_path, _model([node], [x], [_y()])))


def _external(tmp_path, location):
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "48")):
        e = w.external_data.add()
        e.key, e.value = k, v
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    sub = tmp_path / "model"
    sub.mkdir(exist_ok=True)
    return _save(sub, _model([node], [_x()], [_y()], [w]))


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "a/../../secret.bin"])
def test_external_data_outside_model_folder(location, tmp_path):
    (tmp_path / "secret.bin").write_bytes(np.ones(12, np.float32).tobytes())
    with pytest.raises(OnnxError, match="external data"):
        fw.onnx.to_graph(_external(tmp_path, location))


def test_external_data_inside_folder_loads(tmp_path):
    path = _external(tmp_path, "w.bin")
    (path.parent / "w.bin").write_bytes(np.arange(12, dtype=np.float32).tobytes())
    m = fw.onnx.load(path)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(m(x).numpy(), x @ np.arange(12, dtype=np.float32).reshape(4, 3))


def test_external_data_out_of_range(tmp_path):
    path = _external(tmp_path, "w.bin")
    (path.parent / "w.bin").write_bytes(b"\x00" * 8)
    with pytest.raises(OnnxError, match="outside"):
        fw.onnx.to_graph(path)


def test_module_checks_inputs(tmp_path):
    m = fw.onnx.load(_save(tmp_path, _model([helper.make_node("Relu", ["x"], ["y"])], [_x()], [_y()])))
    with pytest.raises(ValueError, match="dim 1 must be 4"):
        m(np.ones((2, 5), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        m(np.ones((2, 4), np.float64))


def test_module_checks_inputs_after_repeated_calls(tmp_path):
    # one input and one output: the module remembers the last checked (shape, dtype) and skips
    # the checks for it; every other input is still checked, and the profiler still sees calls
    m = fw.onnx.load(_save(tmp_path, _model([helper.make_node("Relu", ["x"], ["y"])], [_x()], [_y()])))
    x = np.array([[-1, 2, -3, 4], [5, -6, 7, -8]], np.float32)
    for arg in (x, x, fw.from_numpy(x), np.asfortranarray(x)):
        np.testing.assert_array_equal(m(arg).numpy(), np.maximum(x, 0))
    assert m._fast is not None
    with pytest.raises(ValueError, match="dim 1 must be 4"):
        m(np.ones((2, 5), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        m(np.ones((2, 4), np.float64))
    with pytest.raises(TypeError, match="takes 1 input"):
        m(x, x)
    np.testing.assert_array_equal(m(x[:1]).numpy(), np.maximum(x[:1], 0))  # another batch
    m(x)
    m(x)
    with fw.profiler.profile() as p:
        m(x)
    assert any(e.name == "relu" for e in p.events), [e.name for e in p.events]


# ---- export -------------------------------------------------------------------------------


def test_export_refuses_unmapped_op_before_writing(tmp_path):
    g = Graph()
    x = g.add_input("x", TensorSpec((SymInt.input_dim(0, 0), 3), fw.float32))
    n = g.call("uniform", [], ((2, 3), 0, 0.0, 1.0, fw.float32.code), source="model.py:12")
    y = g.call("relu", [x])
    g.set_output([y.outputs[0], n.outputs[0]])
    path = tmp_path / "out.onnx"
    with pytest.raises(OnnxError) as e:
        fw.onnx.export(g, None, path)
    msg = str(e.value)
    assert "'uniform'" in msg and "model.py:12" in msg and "%uniform" in msg
    assert not path.exists()


def test_export_dynamic_axes_on_static_dim_is_refused(tmp_path):
    g = Graph()
    x = g.add_input("x", TensorSpec((2, 3), fw.float32))
    g.set_output([g.call("relu", [x]).outputs[0]])
    with pytest.raises(OnnxError, match="static"):
        fw.onnx.export(g, None, tmp_path / "o.onnx", dynamic_axes={"x": {0: "batch"}})


def test_export_opset_out_of_range(tmp_path):
    g = Graph()
    x = g.add_input("x", TensorSpec((2, 3), fw.float32))
    g.set_output([g.call("relu", [x]).outputs[0]])
    with pytest.raises(OnnxError, match="opset_version 11"):
        fw.onnx.export(g, None, tmp_path / "o.onnx", opset_version=11)


def test_export_never_bakes_the_batch_into_reshape(tmp_path):
    g = Graph()
    N = SymInt.input_dim(0, 0)
    x = g.add_input("x", TensorSpec((N, 3, 4), fw.float32))
    r = g.call("reshape", [x], ((N, 12),))
    g.set_output([r.outputs[0]])
    path = tmp_path / "r.onnx"
    model = fw.onnx.export(g, None, path, dynamic_axes={"x": {0: "batch"}})
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    consts = [numpy_helper.to_array(t) for t in model.graph.initializer]
    assert all(2 not in c.reshape(-1).tolist() and 5 not in c.reshape(-1).tolist() for c in consts)
    from tests.onnx.helpers import run_ort

    for b in (2, 5):
        xs = np.random.default_rng(b).standard_normal((b, 3, 4)).astype(np.float32)
        np.testing.assert_array_equal(run_ort(path, {"x": xs})[0], xs.reshape(b, 12))


def test_huge_constant_of_shape_is_not_built_at_import(tmp_path):
    shape = numpy_helper.from_array(np.asarray([1 << 20, 1 << 20], np.int64), "s")
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["c"]),
             helper.make_node("Add", ["x", "c"], ["y"], name="add_big")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1 << 20, 1 << 20])
    g = fw.onnx.to_graph(_save(tmp_path, _model(nodes, [x], [_y()], [shape])))
    assert [n.target for n in g.nodes if n.op == "call"] == ["full", "add"]


def test_range_with_zero_delta_is_refused(tmp_path):
    ts = [numpy_helper.from_array(np.asarray(v, np.int64), n) for v, n in ((0, "a"), (5, "b"), (0, "d"))]
    nodes = [helper.make_node("Range", ["a", "b", "d"], ["r"], name="rng"),
             helper.make_node("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["x", "rf"], ["y"])]
    with pytest.raises(OnnxError, match="'rng'"):
        fw.onnx.to_graph(_save(tmp_path, _model(nodes, [_x(("batch", 5))], [_y()], ts)))
