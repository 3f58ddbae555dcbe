// gather.cpp: index-driven data movement: gather, scatter (set/add/multiply), scatter_add,
// index_select, index (advanced indexing with N broadcast index tensors), index_put
// (assignment or accumulation at advanced indices) and nonzero.
//
// Every index is checked before it is used: an out-of-range index throws fw::IndexError
// (Python IndexError) naming the index, the dim and its size. Kernels that write at indices
// (scatter, index_put) first copy the input to the output unless the output *is* the input
// (in-place methods), then split work so that no two threads write the same element.
#include <algorithm>
#include <string>
#include <vector>

#include "kernels/loops.h"
#include "kernels/strided.h"

namespace fw {
namespace {

// A 0-d view seen as 1-d of size 1 (torch treats 0-d inputs of gather/scatter that way).
TensorView at_least_1d(TensorView v) {
  if (v.ndim == 0) {
    v.ndim = 1;
    v.shape[0] = 1;
    v.strides[0] = 0;
  }
  return v;
}

template <class T>
void copy_into(const TensorView& out, const TensorView& x) {
  if (same_view(out, x)) return;  // in place: the output is the input
  unary_kernel<T, T>(out, x, [](T v) { return v; });
}

std::string shape_str(const TensorView& v) {
  std::string s = "[";
  for (int d = 0; d < v.ndim; ++d) s += (d ? ", " : "") + std::to_string(v.shape[d]);
  return s + "]";
}

// ---- gather ------------------------------------------------------------------------------

// gather(dim=#0): out[c] = x[c with c[dim] = index[c]].
template <class T>
void gather_k(const KernelArgs& a) {
  TensorView x = at_least_1d(a.input(0));
  TensorView index = at_least_1d(a.input(1));
  TensorView out = at_least_1d(a.output(0));
  int64_t dim = a.attrs->i(0);
  check_index_dtype(index, "gather");
  FW_CHECK(dim >= 0 && dim < x.ndim, "gather(): dim ", dim, " out of range");
  FW_CHECK(index.ndim == x.ndim, "gather(): Index tensor must have the same number of dimensions as input tensor");
  FW_CHECK(out.ndim == index.ndim, "gather(): output rank mismatch");
  for (int d = 0; d < x.ndim; ++d) {
    FW_CHECK(out.shape[d] == index.shape[d], "gather(): output shape mismatch");
    FW_CHECK(d == dim || index.shape[d] <= x.shape[d], "gather(): Size does not match at dimension ", d,
             " expected index ", shape_str(index), " to be smaller than self ", shape_str(x),
             " apart from dimension ", dim);
  }
  const int64_t size = x.shape[dim], xs = x.strides[dim];
  const T* xp = x.ptr<T>();
  T* op = out.ptr<T>();
  const int last = index.ndim - 1;
  const int64_t is = index.strides[last], os = out.strides[last], xl = x.strides[last];
  for_each_row(index.ndim, index.shape, 16384, [&](const int64_t* c, int64_t n) {
    const int64_t ib = offset_of(index, c), ob = offset_of(out, c);
    const int64_t xb = offset_of(x, c) - c[dim] * xs;  // x's row with coordinate dim at 0
    for (int64_t j = 0; j < n; ++j) {
      int64_t v = read_index(index, ib + j * is);
      FW_CHECK(v >= 0 && v < size, "gather(): index ", v, " is out of bounds for dimension ", dim,
               " with size ", size);
      // along the last dim x moves with j, unless the last dim is the gathered one
      op[ob + j * os] = xp[xb + v * xs + (last == dim ? 0 : j * xl)];
    }
  });
}

// ---- scatter -----------------------------------------------------------------------------

enum class Reduce { none, add, multiply };

// out = x, then out[c with c[dim] = index[c]] (op)= src[c] (or value when src is absent).
template <class T>
void scatter_impl(const KernelArgs& a, int64_t dim, const TensorView* src_in, T value, Reduce mode,
                  const char* op) {
  TensorView x = at_least_1d(a.input(0));
  TensorView index = at_least_1d(a.input(1));
  TensorView out = at_least_1d(a.output(0));
  check_index_dtype(index, op);
  FW_CHECK(dim >= 0 && dim < x.ndim, op, "(): dim ", dim, " out of range");
  FW_CHECK(out.ndim == x.ndim, op, "(): output rank mismatch");
  for (int d = 0; d < x.ndim; ++d) FW_CHECK(out.shape[d] == x.shape[d], op, "(): output shape mismatch");
  FW_CHECK(index.ndim == x.ndim, op, "(): Index tensor must have the same number of dimensions as self tensor");
  TensorView src;
  if (src_in) {
    src = at_least_1d(*src_in);
    FW_CHECK(src.dtype == x.dtype, op, "(): Expected self.dtype to be equal to src.dtype");
    FW_CHECK(src.ndim == x.ndim, op, "(): Index tensor must have the same number of dimensions as src tensor");
  }
  for (int d = 0; d < x.ndim; ++d) {
    bool ok = (d == dim || index.shape[d] <= x.shape[d]) && (!src_in || index.shape[d] <= src.shape[d]);
    FW_CHECK(ok, op, "(): Expected index ", shape_str(index), " to be smaller than self ", shape_str(x),
             " apart from dimension ", dim, src_in ? " and to be smaller size than src " : "",
             src_in ? shape_str(src) : "");
  }
  copy_into<T>(out, x);
  if (index.numel() == 0) return;
  // Threads own rows (all coordinates but dim), so no two write the same element.
  int64_t rows[kMaxDims];
  for (int d = 0; d < index.ndim; ++d) rows[d] = d == dim ? 1 : index.shape[d];
  const int64_t n = index.shape[dim], size = out.shape[dim];
  T* op_ = out.ptr<T>();
  const T* sp = src_in ? src.ptr<T>() : nullptr;
  for_each_coord(index.ndim, rows, std::max<int64_t>(1, 4096 / n), [&](const int64_t* c0) {
    int64_t c[kMaxDims];
    std::copy(c0, c0 + index.ndim, c);
    for (int64_t j = 0; j < n; ++j) {
      c[dim] = j;
      int64_t v = read_index(index, offset_of(index, c));
      FW_CHECK(v >= 0 && v < size, op, "(): index ", v, " is out of bounds for dimension ", dim,
                     " with size ", size);
      T val = sp ? sp[offset_of(src, c)] : value;
      T& dst = op_[offset_of(out, c) + (v - j) * out.strides[dim]];
      if (mode == Reduce::none) dst = val;
      else if (mode == Reduce::add) dst = T(dst + val);
      else dst = T(dst * val);
    }
  });
}

// scatter(inputs x, index, src?; dim=#0, value=#1, reduce=#2 "none"|"add"|"multiply")
template <class T>
void scatter_k(const KernelArgs& a) {
  const std::string& r = a.attrs->str(2);
  Reduce mode = r == "add" ? Reduce::add : r == "multiply" ? Reduce::multiply : Reduce::none;
  FW_CHECK(r == "none" || mode != Reduce::none, "scatter(): reduce argument must be 'add' or 'multiply', got '", r, "'");
  const TensorView* src = a.has_input(2) ? &a.input(2) : nullptr;
  T value = a.attrs->is_none(1) ? T(0) : a.attrs->scalar<T>(1);
  scatter_impl<T>(a, a.attrs->i(0), src, value, mode, "scatter");
}

// scatter_add(inputs x, index, src; dim=#0)
template <class T>
void scatter_add_k(const KernelArgs& a) {
  scatter_impl<T>(a, a.attrs->i(0), &a.input(2), T(0), Reduce::add, "scatter_add");
}

// ---- index_select ------------------------------------------------------------------------

// index_select(dim=#0): out[c] = x[c with c[dim] = index[c[dim]]].
template <class T>
void index_select_k(const KernelArgs& a) {
  TensorView x = at_least_1d(a.input(0));
  const TensorView& index = a.input(1);
  TensorView out = at_least_1d(a.output(0));
  int64_t dim = a.attrs->i(0);
  check_index_dtype(index, "index_select");
  FW_CHECK(index.ndim <= 1, "index_select(): Index is supposed to be a vector");
  FW_CHECK(dim >= 0 && dim < x.ndim && out.ndim == x.ndim, "index_select(): dim ", dim, " out of range");
  const int64_t n = index.numel(), size = x.shape[dim];
  FW_CHECK(out.shape[dim] == n, "index_select(): output size mismatch");
  for (int d = 0; d < x.ndim; ++d)
    FW_CHECK(d == dim || out.shape[d] == x.shape[d], "index_select(): output shape mismatch at dim ", d);
  std::vector<int64_t> idx(size_t(n > 0 ? n : 0));
  const int64_t istride = index.ndim ? index.strides[0] : 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t v = read_index(index, i * istride);
    FW_CHECK_INDEX(v >= 0 && v < size, "index_select(): index ", v, " is out of bounds for dimension ", dim,
                   " with size ", size);
    idx[size_t(i)] = v;
  }
  const T* xp = x.ptr<T>();
  T* op = out.ptr<T>();
  const int64_t xs = x.strides[dim];
  const int last = out.ndim - 1;
  const int64_t os = out.strides[last], xl = x.strides[last];
  for_each_row(out.ndim, out.shape, 16384, [&](const int64_t* c, int64_t n) {
    const int64_t ob = offset_of(out, c);
    if (last == dim) {
      const int64_t xb = offset_of(x, c);
      for (int64_t j = 0; j < n; ++j) op[ob + j * os] = xp[xb + idx[size_t(j)] * xs];
    } else {
      const int64_t xb = offset_of(x, c) + (idx[size_t(c[dim])] - c[dim]) * xs;
      for (int64_t j = 0; j < n; ++j) op[ob + j * os] = xp[xb + j * xl];
    }
  });
}

// ---- advanced indexing: index / index_put ------------------------------------------------

// How N index tensors (at target dims `dims`, broadcast together to B) address a target view,
// and the layout of the indexed result: B replaces the indexed dims in place when they are
// adjacent, else B comes first (torch's and numpy's rule); the other dims keep their order.
struct IndexPlan {
  int nidx = 0;
  const TensorView* idx[kMaxDims];
  int64_t dims[kMaxDims];
  int nb = 0;
  int64_t bshape[kMaxDims];
  int64_t bnumel = 1;
  int nrest = 0;
  int64_t rest_dims[kMaxDims];
  int64_t rest_shape[kMaxDims];
  int64_t rest_numel = 1;
  int bpos = 0;  // where B starts in the result

  IndexPlan(const TensorView& target, const KernelArgs& a, int first_index, const char* op) {
    const auto& d = a.attrs->ints(0);
    nidx = int(d.size());
    FW_CHECK(nidx >= 1 && nidx <= target.ndim, op, "(): ", nidx, " index tensors for a ", target.ndim, "-d tensor");
    FW_CHECK(a.n_in == first_index + nidx, op, "(): expected ", nidx, " index tensors, got ", a.n_in - first_index);
    bool indexed[kMaxDims] = {};
    for (int k = 0; k < nidx; ++k) {
      dims[k] = d[size_t(k)];
      FW_CHECK(dims[k] >= 0 && dims[k] < target.ndim && !indexed[dims[k]] && (k == 0 || dims[k] > dims[k - 1]),
               op, "(): bad indexed dims");
      indexed[dims[k]] = true;
      idx[k] = &a.input(first_index + k);
      check_index_dtype(*idx[k], op);
      nb = std::max(nb, idx[k]->ndim);
    }
    for (int j = 0; j < nb; ++j) bshape[j] = 1;
    for (int k = 0; k < nidx; ++k) {
      const TensorView& v = *idx[k];
      for (int j = 0; j < v.ndim; ++j) {
        int64_t& s = bshape[nb - v.ndim + j];
        FW_CHECK_INDEX(v.shape[j] == s || v.shape[j] == 1 || s == 1,
                       "shape mismatch: indexing tensors could not be broadcast together");
        if (s == 1) s = v.shape[j];
      }
    }
    for (int j = 0; j < nb; ++j) bnumel *= bshape[j];
    for (int t = 0; t < target.ndim; ++t) {
      if (indexed[t]) continue;
      rest_dims[nrest] = t;
      rest_shape[nrest] = target.shape[t];
      rest_numel *= target.shape[t];
      ++nrest;
    }
    bool adjacent = dims[nidx - 1] - dims[0] + 1 == nidx;
    bpos = adjacent ? int(dims[0]) : 0;
  }

  // The result's dim of rest dim i / of B dim j.
  int rest_pos(int i) const { return i < bpos ? i : i + nb; }

  void check_result(const TensorView& r, const char* op) const {
    FW_CHECK(r.ndim == nb + nrest, op, "(): indexed result has ", r.ndim, " dims, expected ", nb + nrest);
    for (int j = 0; j < nb; ++j) FW_CHECK(r.shape[bpos + j] == bshape[j], op, "(): indexed result shape mismatch");
    for (int i = 0; i < nrest; ++i)
      FW_CHECK(r.shape[rest_pos(i)] == rest_shape[i], op, "(): indexed result shape mismatch");
  }

  // For every position of B: the target offset of the indexed dims (indices checked and
  // wrapped) and the result offset of B's dims.
  void offsets(const TensorView& target, const TensorView& result, std::vector<int64_t>& toff,
               std::vector<int64_t>& roff) const {
    toff.assign(size_t(bnumel), 0);
    roff.assign(size_t(bnumel), 0);
    parallel_for(bnumel, 4096, [&](int64_t begin, int64_t end) {
      int64_t c[kMaxDims] = {};
      unravel(begin, nb, bshape, c);
      for (int64_t b = begin; b < end; ++b) {
        int64_t t = 0, r = 0;
        for (int j = 0; j < nb; ++j) r += c[j] * result.strides[bpos + j];
        for (int k = 0; k < nidx; ++k) {
          const TensorView& v = *idx[k];
          int64_t off = 0;
          for (int j = 0; j < v.ndim; ++j)
            if (v.shape[j] != 1) off += c[nb - v.ndim + j] * v.strides[j];
          int64_t i = read_index(v, off);
          const int64_t size = target.shape[dims[k]];
          FW_CHECK_INDEX(i >= -size && i < size, "index ", i, " is out of bounds for dimension ", dims[k],
                         " with size ", size);
          t += (i < 0 ? i + size : i) * target.strides[dims[k]];
        }
        toff[size_t(b)] = t;
        roff[size_t(b)] = r;
        next_coord(nb, bshape, c);
      }
    });
  }

  // For every rest position (row-major over the dims not indexed): its offsets in the
  // target and in the result.
  void rest_offsets(const TensorView& target, const TensorView& result, std::vector<int64_t>& t,
                    std::vector<int64_t>& o) const {
    t.assign(size_t(rest_numel), 0);
    o.assign(size_t(rest_numel), 0);
    parallel_for(rest_numel, 16384, [&](int64_t begin, int64_t end) {
      int64_t c[kMaxDims] = {};
      unravel(begin, nrest, rest_shape, c);
      for (int64_t r = begin; r < end; ++r) {
        int64_t tt = 0, oo = 0;
        for (int i = 0; i < nrest; ++i) {
          tt += c[i] * target.strides[rest_dims[i]];
          oo += c[i] * result.strides[rest_pos(i)];
        }
        t[size_t(r)] = tt;
        o[size_t(r)] = oo;
        next_coord(nrest, rest_shape, c);
      }
    });
  }
};

// index(inputs x, idx_0..idx_{n-1}; dims=#0): out = x[..., idx_0, ..., idx_{n-1}, ...] with
// idx_k indexing x's dim dims[k].
template <class T>
void index_k(const KernelArgs& a) {
  const TensorView& x = a.input(0);
  TensorView& out = a.output(0);
  IndexPlan plan(x, a, 1, "index");
  plan.check_result(out, "index");
  std::vector<int64_t> toff, roff, rt, ro;
  plan.offsets(x, out, toff, roff);
  if (out.numel() == 0) return;
  plan.rest_offsets(x, out, rt, ro);
  const T* xp = x.ptr<T>();
  T* op = out.ptr<T>();
  const int64_t nb = plan.bnumel, nr = plan.rest_numel;
  // Walk in the result's memory order: B's dims come first when bpos == 0.
  if (plan.bpos == 0) {
    parallel_for(nb, std::max<int64_t>(1, 16384 / nr), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const T* src = xp + toff[size_t(b)];
        T* dst = op + roff[size_t(b)];
        for (int64_t r = 0; r < nr; ++r) dst[ro[size_t(r)]] = src[rt[size_t(r)]];
      }
    });
  } else {
    parallel_for(nr, std::max<int64_t>(1, 16384 / nb), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const T* src = xp + rt[size_t(r)];
        T* dst = op + ro[size_t(r)];
        for (int64_t b = 0; b < nb; ++b) dst[roff[size_t(b)]] = src[toff[size_t(b)]];
      }
    });
  }
}

// index_put(inputs x, values, idx_0..idx_{n-1}; dims=#0, accumulate=#1): out = x, then
// out[indices] = values (or += with accumulate). values has the indexed result's shape
// (the caller broadcasts it). Duplicate indices: the last write wins, or all accumulate.
template <class T>
void index_put_k(const KernelArgs& a) {
  const TensorView& x = a.input(0);
  const TensorView& values = a.input(1);
  TensorView& out = a.output(0);
  const bool accumulate = a.attrs->i(1) != 0;
  FW_CHECK(values.dtype == x.dtype, "index_put(): values dtype ", dtype_name(values.dtype),
           " != self dtype ", dtype_name(x.dtype));
  FW_CHECK(out.ndim == x.ndim, "index_put(): output rank mismatch");
  for (int d = 0; d < x.ndim; ++d) FW_CHECK(out.shape[d] == x.shape[d], "index_put(): output shape mismatch");
  IndexPlan plan(out, a, 2, "index_put");
  plan.check_result(values, "index_put");
  std::vector<int64_t> toff, roff, rt, ro;
  plan.offsets(out, values, toff, roff);
  copy_into<T>(out, x);
  if (values.numel() == 0) return;
  plan.rest_offsets(out, values, rt, ro);
  const T* vp = values.ptr<T>();
  T* op = out.ptr<T>();
  const int64_t nb = plan.bnumel;
  // Threads own ranges of rest positions: distinct rest positions never write the same
  // element, and within a range B runs in order (the last duplicate wins, or all add up).
  parallel_for(plan.rest_numel, std::max<int64_t>(1, 16384 / nb), [&](int64_t begin, int64_t end) {
    for (int64_t b = 0; b < nb; ++b) {
      T* dst = op + toff[size_t(b)];
      const T* src = vp + roff[size_t(b)];
      for (int64_t r = begin; r < end; ++r) {
        T& d = dst[rt[size_t(r)]];
        const T v = src[ro[size_t(r)]];
        d = accumulate ? T(d + v) : v;
      }
    }
  });
}

// ---- nonzero -----------------------------------------------------------------------------

// nonzero(n=#0): out (n, ndim) int64 holds the coordinates of the n nonzero elements in
// row-major order (the caller counted them).
template <class T>
void nonzero_k(const KernelArgs& a) {
  const TensorView& x = a.input(0);
  TensorView& out = a.output(0);
  const int64_t n = a.attrs->i(0);
  FW_CHECK(out.dtype == DType::i64 && out.ndim == 2 && out.shape[0] == n && out.shape[1] == x.ndim,
           "nonzero(): bad output");
  const T* xp = x.ptr<T>();
  int64_t* op = out.ptr<int64_t>();
  int64_t c[kMaxDims] = {};
  int64_t found = 0, total = x.numel();
  for (int64_t p = 0; p < total; ++p) {
    if (xp[offset_of(x, c)] != T(0)) {
      FW_CHECK(found < n, "nonzero(): input has more than the ", n,
               " nonzero elements counted (a traced graph bakes the count in)");
      for (int d = 0; d < x.ndim; ++d) op[found * out.strides[0] + d * out.strides[1]] = c[d];
      ++found;
    }
    next_coord(x.ndim, x.shape, c);
  }
  FW_CHECK(found == n, "nonzero(): input has ", found, " nonzero elements, ", n,
           " were counted (a traced graph bakes the count in)");
}

template <class T>
void register_all(DType dt) {
  register_kernel("gather", dt, &gather_k<T>);
  register_kernel("scatter", dt, &scatter_k<T>);
  register_kernel("scatter_add", dt, &scatter_add_k<T>);
  register_kernel("index_select", dt, &index_select_k<T>);
  register_kernel("index", dt, &index_k<T>);
  register_kernel("index_put", dt, &index_put_k<T>);
  register_kernel("nonzero", dt, &nonzero_k<T>);
}

}  // namespace

FW_REGISTER_KERNELS(gather) {
  register_all<float>(DType::f32);
  register_all<double>(DType::f64);
  register_all<int32_t>(DType::i32);
  register_all<int64_t>(DType::i64);
  register_all<bool>(DType::b8);
}

}  // namespace fw
