// module.cpp: framework._C — the only place that includes pybind11's numpy support.
// Converts numpy arrays to TensorViews and Python values to Attrs, and exposes the kernel
// table, the thread pool and the caching allocator. No compute happens here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>

#include "core/allocator.h"
#include "core/parallel.h"
#include "kernels/registry.h"
#include "bindings/convert.h"

namespace py = pybind11;

extern "C" {
char* scipy_openblas_get_config(void);
char* scipy_openblas_get_corename(void);
int scipy_openblas_get_num_threads(void);
}

namespace fw {

static const char* numpy_dtype_str(DType dt) {
  switch (dt) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::b8: return "bool";
  }
  return "float32";
}

DType dtype_of_array(const py::array& a) {
  char kind = a.dtype().kind();
  auto size = a.itemsize();
  if (kind == 'f' && size == 4) return DType::f32;
  if (kind == 'f' && size == 8) return DType::f64;
  if (kind == 'i' && size == 4) return DType::i32;
  if (kind == 'i' && size == 8) return DType::i64;
  if (kind == 'b' && size == 1) return DType::b8;
  throw py::type_error(std::string("unsupported array dtype '") + std::string(py::str(a.dtype())) +
                       "' (framework supports float32, float64, int32, int64, bool)");
}

TensorView view_of_array(const py::handle& obj, bool writable) {
  if (!py::isinstance<py::array>(obj)) throw py::type_error("expected a numpy array as kernel operand");
  py::array a = py::reinterpret_borrow<py::array>(obj);
  TensorView v;
  v.dtype = dtype_of_array(a);
  int nd = int(a.ndim());
  if (nd > kMaxDims) throw py::value_error("tensors have at most 8 dims, got " + std::to_string(nd));
  if (writable && !a.writeable()) throw py::value_error("kernel output array is read-only");
  v.ndim = nd;
  v.data = const_cast<void*>(a.data());
  auto item = a.itemsize();
  for (int i = 0; i < nd; ++i) {
    v.shape[i] = a.shape(i);
    auto st = a.strides(i);
    if (st % item != 0) throw py::value_error("array strides are not a multiple of its item size");
    v.strides[i] = st / item;
  }
  return v;
}

AttrValue attr_of_object(const py::handle& o) {
  if (o.is_none()) return AttrValue();
  if (py::isinstance<py::bool_>(o)) return AttrValue::from_int(o.cast<bool>() ? 1 : 0);
  if (py::isinstance<py::int_>(o)) return AttrValue::from_int(o.cast<int64_t>());
  if (py::isinstance<py::float_>(o)) return AttrValue::from_float(o.cast<double>());
  if (py::isinstance<py::str>(o)) return AttrValue::from_str(o.cast<std::string>());
  if (py::isinstance<py::list>(o) || py::isinstance<py::tuple>(o)) {
    py::sequence seq = py::reinterpret_borrow<py::sequence>(o);
    bool all_int = true;
    for (auto item : seq)
      if (!py::isinstance<py::int_>(item)) all_int = false;
    if (all_int) {
      std::vector<int64_t> v;
      for (auto item : seq) v.push_back(item.cast<int64_t>());
      return AttrValue::from_ints(std::move(v));
    }
    std::vector<double> v;
    for (auto item : seq) v.push_back(item.cast<double>());
    return AttrValue::from_floats(std::move(v));
  }
  // numpy scalars and other numbers
  try {
    return AttrValue::from_float(o.cast<double>());
  } catch (const py::cast_error&) {
    throw py::type_error("unsupported attribute value: " + std::string(py::repr(o)));
  }
}

Attrs attrs_of_tuple(const py::tuple& t) {
  Attrs attrs;
  attrs.values.reserve(t.size());
  for (auto item : t) attrs.values.push_back(attr_of_object(item));
  return attrs;
}

// Runs kernel `handle` on numpy operands. None inputs and outputs become empty views (optional
// operands; kernels test `data != nullptr`).
static void run_kernel(uintptr_t handle, const py::tuple& inputs, const py::tuple& outputs,
                       const py::tuple& attr_values) {
  KernelFn fn = reinterpret_cast<KernelFn>(handle);
  if (!fn) throw py::value_error("null kernel handle");
  TensorView ins[16], outs[8];
  if (inputs.size() > 16 || outputs.size() > 8) throw py::value_error("too many kernel operands");
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].is_none()) ins[i] = view_of_array(inputs[i], false);
  for (size_t i = 0; i < outputs.size(); ++i)
    if (!outputs[i].is_none()) outs[i] = view_of_array(outputs[i], true);
  Attrs attrs = attrs_of_tuple(attr_values);
  KernelArgs args;
  args.in = ins;
  args.n_in = int(inputs.size());
  args.out = outs;
  args.n_out = int(outputs.size());
  args.attrs = &attrs;
  py::gil_scoped_release release;
  fn(args);
}

// The numpy dtype of a framework dtype, without parsing a dtype string (PyArray_DescrFromType).
static py::dtype numpy_dtype(DType dt) {
  switch (dt) {
    case DType::f32: return py::dtype::of<float>();
    case DType::f64: return py::dtype::of<double>();
    case DType::i32: return py::dtype::of<int32_t>();
    case DType::i64: return py::dtype::of<int64_t>();
    case DType::b8: return py::dtype::of<bool>();
  }
  return py::dtype(numpy_dtype_str(dt));
}

struct AllocBlock {
  void* p;
  size_t n;
};

// A numpy array of `ndim` dims whose memory comes from the caching allocator; freeing the
// array returns the block to the cache.
static py::array empty_array_dims(const int64_t* shape, size_t ndim, int dtype_code) {
  if (!dtype_valid(dtype_code)) throw py::value_error("bad dtype code " + std::to_string(dtype_code));
  DType dt = DType(dtype_code);
  if (ndim > size_t(kMaxDims)) throw py::value_error("tensors have at most 8 dims");
  int64_t n = 1;
  for (size_t i = 0; i < ndim; ++i) {
    int64_t s = shape[i];
    if (s < 0) throw py::value_error("negative dimension " + std::to_string(s) + " in shape");
    if (s != 0 && n > (int64_t(1) << 46) / s) throw py::value_error("tensor too large");
    n *= s;
  }
  size_t nbytes = size_t(n) * dtype_size(dt);
  void* p = cached_alloc(nbytes);
  // The owner is a plain PyCapsule holding the block (pointer + size): freeing the array
  // frees the capsule, which returns the block to the cache.
  auto* blk = new AllocBlock{p, nbytes};
  PyObject* owner = PyCapsule_New(blk, nullptr, [](PyObject* cap) {
    auto* b = static_cast<AllocBlock*>(PyCapsule_GetPointer(cap, nullptr));
    cached_free(b->p, b->n);
    delete b;
  });
  if (!owner) {
    cached_free(p, nbytes);
    delete blk;
    throw py::error_already_set();
  }
  Py_intptr_t dims[kMaxDims];
  for (size_t i = 0; i < ndim; ++i) dims[i] = Py_intptr_t(shape[i]);
  auto& api = py::detail::npy_api::get();
  PyObject* arr = api.PyArray_NewFromDescr_(
      api.PyArray_Type_, numpy_dtype(dt).release().ptr(), int(ndim), dims, nullptr, p,
      py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_WRITEABLE_ |
          py::detail::npy_api::NPY_ARRAY_ALIGNED_, nullptr);
  if (!arr) {
    Py_DECREF(owner);
    throw py::error_already_set();
  }
  if (api.PyArray_SetBaseObject_(arr, owner) != 0) {  // steals owner, even on failure
    Py_DECREF(arr);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::array>(arr);
}

py::array empty_array(const std::vector<int64_t>& shape, int dtype_code) {
  return empty_array_dims(shape.data(), shape.size(), dtype_code);
}

// The dtype code of a spec's dtype entry: an int code, or a framework dtype (its `.code`).
static int spec_dtype_code(const py::handle& d) {
  if (PyLong_Check(d.ptr())) return d.cast<int>();
  static PyObject* code_name = PyUnicode_InternFromString("code");  // never freed (module lifetime)
  py::object code = py::reinterpret_steal<py::object>(PyObject_GetAttr(d.ptr(), code_name));
  if (!code) throw py::error_already_set();
  return code.cast<int>();
}

// Allocates the outputs (specs: a list or tuple of (shape, dtype) where dtype is a dtype code
// or a framework dtype, i.e. what an OpDef's infer returns) and runs the kernel: eager
// dispatch's one call per op.
static py::tuple call_kernel(uintptr_t handle, const py::tuple& inputs, const py::handle& specs,
                             const py::tuple& attr_values) {
  py::object seq = py::reinterpret_steal<py::object>(PySequence_Fast(specs.ptr(), "specs must be a sequence"));
  if (!seq) throw py::error_already_set();
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.ptr());
  PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
  py::tuple outs(n);
  for (Py_ssize_t i = 0; i < n; ++i) {
    py::handle spec(items[i]);
    if (!PyTuple_Check(spec.ptr()) && !PyList_Check(spec.ptr()))
      throw py::type_error("each spec must be a (shape, dtype) pair");
    py::sequence pair = py::reinterpret_borrow<py::sequence>(spec);
    if (pair.size() != 2) throw py::type_error("each spec must be a (shape, dtype) pair");
    py::object shape_obj = pair[0];
    py::object shape_seq = py::reinterpret_steal<py::object>(
        PySequence_Fast(shape_obj.ptr(), "a spec's shape must be a sequence of ints"));
    if (!shape_seq) throw py::error_already_set();
    Py_ssize_t nd = PySequence_Fast_GET_SIZE(shape_seq.ptr());
    if (nd > kMaxDims) throw py::value_error("tensors have at most 8 dims, got " + std::to_string(nd));
    PyObject** dims = PySequence_Fast_ITEMS(shape_seq.ptr());
    int64_t shape[kMaxDims];
    for (Py_ssize_t k = 0; k < nd; ++k) shape[k] = py::handle(dims[k]).cast<int64_t>();
    outs[i] = empty_array_dims(shape, size_t(nd), spec_dtype_code(pair[1]));
  }
  run_kernel(handle, inputs, outs, attr_values);
  return outs;
}

}  // namespace fw

PYBIND11_MODULE(_C, m) {
  using namespace fw;
  m.doc() = "framework C++ core: kernel table, thread pool, allocator, runtime";
  py::register_exception<fw::Error>(m, "KernelError", PyExc_RuntimeError);
  // Registered after Error so it is tried first (pybind11 tries translators newest first).
  py::register_exception<fw::IndexError>(m, "KernelIndexError", PyExc_IndexError);

  m.def("kernel_handle", [](const std::string& name, int dtype_code) -> py::object {
    if (!dtype_valid(dtype_code)) throw py::value_error("bad dtype code");
    KernelFn fn = find_kernel(name, DType(dtype_code));
    if (!fn) return py::none();
    return py::int_(reinterpret_cast<uintptr_t>(fn));
  }, "Kernel handle for (op, dtype code), or None if the table has none.");
  m.def("run", &run_kernel, py::arg("handle"), py::arg("inputs"), py::arg("outputs"), py::arg("attrs"),
        "Runs a kernel on numpy operands (outputs preallocated).");
  m.def("call", &call_kernel, py::arg("handle"), py::arg("inputs"), py::arg("specs"), py::arg("attrs"),
        "Allocates outputs from [(shape, dtype code or dtype)] and runs a kernel; returns the outputs.");
  m.def("list_kernels", []() {
    py::dict d;
    for (auto& [name, dts] : list_kernels()) {
      py::list l;
      for (auto dt : dts) l.append(int(dt));
      d[py::str(name)] = l;
    }
    return d;
  }, "{op name: [dtype codes]} of every registered kernel.");
  m.def("empty", &empty_array, py::arg("shape"), py::arg("dtype"),
        "Uninitialized array from the caching allocator.");
  m.def("cpu_has_avx512f", &cpu_has_avx512f, "Whether this CPU runs the AVX-512 kernels (packed tiles, nchw16c).");
  m.def("set_num_threads", &set_num_threads);
  m.def("get_num_threads", &get_num_threads);
  m.def("allocator_stats", []() {
    auto s = allocator_stats();
    py::dict d;
    d["allocated_bytes"] = s.allocated_bytes;
    d["cached_bytes"] = s.cached_bytes;
    d["hits"] = s.hits;
    d["misses"] = s.misses;
    return d;
  });
  m.def("empty_cache", &allocator_empty_cache);
  m.def("set_cache_limit", &allocator_set_cache_limit);
  m.def("blas_info", []() {
    py::dict d;
    d["config"] = std::string(scipy_openblas_get_config());
    d["corename"] = std::string(scipy_openblas_get_corename());
    d["num_threads"] = scipy_openblas_get_num_threads();
    return d;
  });
  register_runtime_bindings(m);
}
