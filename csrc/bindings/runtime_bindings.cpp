// runtime_bindings.cpp: Python access to the C++ graph runtime (csrc/runtime) as
// framework._C.RuntimeModel. framework/jit/runtime.py wraps it; no logic lives here beyond
// converting numpy arrays to buffers (the GIL is released while the graph runs).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/convert.h"
#include "runtime/runtime.h"

namespace py = pybind11;

namespace fw {
namespace {

ModelOptions options_of(uint64_t max_memory, size_t plan_cache, bool prepack, bool blocked_layout, bool alias_views) {
  ModelOptions o;
  o.prepack = prepack;
  o.blocked_layout = blocked_layout;
  o.alias_views = alias_views;
  if (max_memory) o.max_memory_bytes = max_memory;
  if (plan_cache) o.plan_cache_size = plan_cache;
  return o;
}

// A buffer for input i; a non-C-contiguous array is copied into `keep` first.
TensorRef ref_of(const py::handle& obj, size_t i, std::vector<py::array>& keep) {
  if (!py::isinstance<py::array>(obj)) throw py::type_error("runtime input " + std::to_string(i) + " is not a numpy array");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!(a.flags() & py::array::c_style)) {
    a = py::array::ensure(a, py::array::c_style);
    if (!a) throw py::error_already_set();
    keep.push_back(a);
  }
  TensorRef t;
  t.dtype = dtype_of_array(a);
  t.data = const_cast<void*>(a.data());
  t.shape.assign(a.shape(), a.shape() + a.ndim());
  return t;
}

std::vector<Shape> shapes_of(const py::sequence& seq) {
  std::vector<Shape> out;
  for (auto s : seq) out.push_back(s.cast<Shape>());
  return out;
}

py::dict value_info(const ValueInfo& v) {
  py::dict d;
  d["name"] = v.name;
  d["dtype"] = int(v.dtype);
  d["shape"] = py::tuple(py::cast(v.shape));
  return d;
}

// Runs the model; returns the output arrays (and fills `timings` when given).
py::list run_outputs(const Model& m, const py::sequence& inputs, std::vector<NodeTiming>* timings) {
  size_t n = inputs.size();
  std::vector<TensorRef> ins;
  std::vector<py::array> keep;
  std::vector<Shape> shapes;
  ins.reserve(n);
  shapes.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    ins.push_back(ref_of(inputs[i], i, keep));
    shapes.push_back(ins.back().shape);
  }
  std::vector<Shape> out_shapes = m.output_shapes(shapes);  // cached plan: no need to drop the GIL
  py::list outs(out_shapes.size());
  std::vector<TensorRef> refs;
  refs.reserve(out_shapes.size());
  for (size_t k = 0; k < out_shapes.size(); ++k) {
    DType dt = m.output_dtype(k);
    py::array a = empty_array(out_shapes[k], int(dt));
    refs.push_back({a.mutable_data(), dt, out_shapes[k]});
    outs[k] = a;
  }
  {
    py::gil_scoped_release release;
    m.run(ins, refs, timings);
  }
  return outs;
}

// Runs the model; returns (outputs, [(node, start s, duration s)] or None).
py::tuple run_model(const Model& m, const py::sequence& inputs, bool profile) {
  if (!profile) return py::make_tuple(run_outputs(m, inputs, nullptr), py::none());
  std::vector<NodeTiming> timings;
  py::list outs = run_outputs(m, inputs, &timings);
  py::list t;
  for (auto& nt : timings) t.append(py::make_tuple(nt.node, nt.start, nt.seconds));
  return py::make_tuple(outs, t);
}

}  // namespace

void register_runtime_bindings(py::module_& m) {
  py::class_<Model>(m, "RuntimeModel", "A loaded graph (csrc/runtime/runtime.h).")
      .def_static("from_bytes", [](py::buffer b, uint64_t max_memory, size_t plan_cache, bool prepack, bool blocked_layout, bool alias_views) {
            py::buffer_info info = b.request();
            const void* p = info.ptr;
            size_t n = size_t(info.size * info.itemsize);
            py::gil_scoped_release release;
            return Model::from_bytes(p, n, options_of(max_memory, plan_cache, prepack, blocked_layout, alias_views));
          }, py::arg("data"), py::arg("max_memory") = 0, py::arg("plan_cache") = 0, py::arg("prepack") = true, py::arg("blocked_layout") = true,
          py::arg("alias_views") = true,
          "Parses a model file held in memory (copied).")
      .def_static("from_array", [](py::array a, uint64_t max_memory, size_t plan_cache, bool prepack, bool blocked_layout, bool alias_views) {
            if (!(a.flags() & py::array::c_style) || a.itemsize() != 1)
              throw py::value_error("from_array: expected a C-contiguous uint8 array");
            size_t n = size_t(a.size());
            // The model runs from the array's memory: the shared_ptr owns a reference to it
            // (dropped with the GIL held; leaked if Python is already gone).
            auto* keep = new py::object(a);
            std::shared_ptr<const void> bytes(a.data(), [keep](const void*) {
              if (!Py_IsInitialized()) return;
              py::gil_scoped_acquire gil;
              delete keep;
            });
            py::gil_scoped_release release;
            return Model::from_shared(std::move(bytes), n, options_of(max_memory, plan_cache, prepack, blocked_layout, alias_views));
          }, py::arg("data"), py::arg("max_memory") = 0, py::arg("plan_cache") = 0, py::arg("prepack") = true, py::arg("blocked_layout") = true,
          py::arg("alias_views") = true,
          "Parses a model file held in a 64-byte-aligned uint8 numpy array, without copying it.")
      .def_static("load", [](const std::string& path, uint64_t max_memory, size_t plan_cache, bool prepack, bool blocked_layout, bool alias_views) {
            py::gil_scoped_release release;
            return Model::load(path, options_of(max_memory, plan_cache, prepack, blocked_layout, alias_views));
          }, py::arg("path"), py::arg("max_memory") = 0, py::arg("plan_cache") = 0, py::arg("prepack") = true, py::arg("blocked_layout") = true,
          py::arg("alias_views") = true,
          "Memory-maps and parses a model file.")
      .def("run", &run_model, py::arg("inputs"), py::arg("profile") = false,
           "Runs on numpy inputs; returns (outputs, [(node, start s, duration s)] or None).")
      .def("__call__", [](const Model& m, const py::sequence& inputs) { return run_outputs(m, inputs, nullptr); },
           "Runs on numpy inputs (non-contiguous ones are copied); returns the output arrays.")
      .def("output_shapes", [](const Model& m, const py::sequence& s) { return m.output_shapes(shapes_of(s)); })
      .def("memory_plan", [](const Model& m, const py::sequence& s) { return m.memory_plan(shapes_of(s)); })
      .def("plan_entries", [](const Model& m, const py::sequence& s) {
            uint64_t peak = 0;
            auto entries = m.plan_entries(shapes_of(s), &peak);
            py::list l;
            for (auto& e : entries) {
              py::dict d;
              d["name"] = e.name;
              d["placement"] = e.placement;
              d["offset"] = e.offset;
              d["nbytes"] = e.nbytes;
              d["first_node"] = e.first_node;
              d["last_node"] = e.last_node;
              d["shape"] = py::tuple(py::cast(e.shape));
              d["alias_of"] = e.alias_of;
              l.append(d);
            }
            return py::make_tuple(l, peak);
          }, "([{name, placement, offset, nbytes, first_node, last_node, shape, alias_of}], peak bytes)")
      .def_property_readonly("num_inputs", &Model::num_inputs)
      .def_property_readonly("num_outputs", &Model::num_outputs)
      .def("input_info", [](const Model& m, size_t i) { return value_info(m.input_info(i)); })
      .def("output_info", [](const Model& m, size_t i) { return value_info(m.output_info(i)); })
      .def("nodes", [](const Model& m) {
            py::list l;
            for (auto& n : m.nodes()) l.append(py::make_tuple(n.op, n.kernel, n.source, n.inputs, n.outputs));
            return l;
          })
      .def("node_int_attrs", [](const Model& m) {
            py::list l;
            for (const NodeInfo& n : m.nodes()) l.append(py::cast(n.int_attrs));
            return l;
          }, "Every node's static attributes as int lists (an Int as [v], other kinds []), in run order.")
      .def("value_names", &Model::value_names)
      .def_property_readonly("cached_plans", &Model::cached_plans)
      .def("to_bytes", [](const Model& m) {
            auto [p, n] = m.file_bytes();
            return py::bytes(static_cast<const char*>(p), n);
          }, "The model file's bytes.");
}

}  // namespace fw
