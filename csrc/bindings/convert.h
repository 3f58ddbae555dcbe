// convert.h: numpy <-> TensorView and Python <-> Attrs conversions shared by binding files.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "core/attrs.h"
#include "core/tensor_view.h"

namespace fw {
DType dtype_of_array(const pybind11::array& a);
TensorView view_of_array(const pybind11::handle& obj, bool writable);
AttrValue attr_of_object(const pybind11::handle& o);
Attrs attrs_of_tuple(const pybind11::tuple& t);
pybind11::array empty_array(const std::vector<int64_t>& shape, int dtype_code);
void register_runtime_bindings(pybind11::module_& m);
}  // namespace fw
