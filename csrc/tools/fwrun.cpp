// fwrun: runs a framework model file with no Python (links only fw_core and the BLAS).
//
//   fwrun model.fwm --input x.npy [--input ...] --output y.npy [--output ...]
//   fwrun model.fwm --bench N [--input x.npy ... | --shape 1,3,224,224 ...] [--profile]
//   fwrun model.fwm --info | --plan [--shape ...]     [--threads T] [--max-memory BYTES] [--no-prepack] [--no-blocked-layout]
//         [--no-alias-views]
//
// Exit status: 0 success, 1 error (message on stderr: a bad file never crashes), 2 usage.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "runtime/runtime.h"
#include "tools/npy.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct Args {
  std::string model;
  std::vector<std::string> inputs, outputs, shapes;
  int bench = 0;
  int threads = 0;
  uint64_t max_memory = 0;
  bool info = false, plan = false, prepack = true, blocked_layout = true, alias_views = true, profile = false;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "fwrun: %s\n"
               "usage: fwrun MODEL --input X.npy [--input ...] --output Y.npy [--output ...]\n"
               "       fwrun MODEL --bench N [--input X.npy ... | --shape 1,3,224,224 ...] [--threads T]\n"
               "       fwrun MODEL --info | --plan [--shape ...]\n"
               "options: --threads T (kernel threads), --max-memory BYTES (per value and per arena),\n"
               "         --no-prepack (keep weights as stored; see docs/runtime.md),\n"
               "         --no-blocked-layout (plain NCHW activations between convolutions),\n"
               "         --no-alias-views (reshape/clone/select outputs get their own buffers, kernels run),\n"
               "         --profile (with --bench: the nodes whose first run costs most over a steady run)\n",
               msg);
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + s).c_str());
      return argv[++i];
    };
    if (s == "--input") a.inputs.push_back(value());
    else if (s == "--output") a.outputs.push_back(value());
    else if (s == "--shape") a.shapes.push_back(value());
    else if (s == "--bench") a.bench = std::atoi(value().c_str());
    else if (s == "--threads") a.threads = std::atoi(value().c_str());
    else if (s == "--max-memory") a.max_memory = std::strtoull(value().c_str(), nullptr, 10);
    else if (s == "--info") a.info = true;
    else if (s == "--plan") a.plan = true;
    else if (s == "--no-prepack") a.prepack = false;
    else if (s == "--no-blocked-layout") a.blocked_layout = false;
    else if (s == "--no-alias-views") a.alias_views = false;
    else if (s == "--profile") a.profile = true;
    else if (s == "-h" || s == "--help") usage("help");
    else if (!s.empty() && s[0] == '-') usage(("unknown option " + s).c_str());
    else if (a.model.empty()) a.model = s;
    else usage(("unexpected argument " + s).c_str());
  }
  if (a.model.empty()) usage("no model file given");
  if (a.bench < 0) usage("--bench needs a positive count");
  if (!a.info && !a.plan && !a.bench && a.outputs.empty()) usage("nothing to do (give --output, --bench, --info or --plan)");
  return a;
}

fw::Shape parse_shape(const std::string& s) {
  fw::Shape shape;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    char* end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 0) throw fw::Error("bad --shape '" + s + "'");
    shape.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return shape;
}

// Input shapes: from --shape, else the model's fixed dims with 1 for input-dependent ones.
std::vector<fw::Shape> default_shapes(const fw::Model& m, const Args& a) {
  std::vector<fw::Shape> shapes;
  for (size_t i = 0; i < m.num_inputs(); ++i) {
    if (i < a.shapes.size()) {
      shapes.push_back(parse_shape(a.shapes[i]));
    } else {
      fw::Shape s = m.input_info(i).shape;
      for (auto& d : s) d = d < 0 ? 1 : d;
      shapes.push_back(s);
    }
  }
  return shapes;
}

// Random inputs of the given shapes; their size is checked (the model file may be hostile).
std::vector<fw::npy::Array> synthetic_inputs(const fw::Model& m, const std::vector<fw::Shape>& shapes,
                                             uint64_t max_bytes) {
  std::vector<fw::npy::Array> arrays;
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (size_t i = 0; i < shapes.size() && i < m.num_inputs(); ++i) {
    fw::npy::Array a;
    a.dtype = m.input_info(i).dtype;
    a.shape = shapes[i];
    uint64_t n = 1, bytes = 0;
    for (auto d : a.shape)
      if (d < 0 || __builtin_mul_overflow(n, uint64_t(d), &n)) throw fw::Error("input shape too large");
    if (__builtin_mul_overflow(n, uint64_t(fw::dtype_bytes(a.dtype)), &bytes) || bytes > max_bytes)
      throw fw::Error("synthetic input " + std::to_string(i) + " would need more than " + std::to_string(max_bytes) +
                      " bytes (give --shape or --input)");
    a.bytes.assign(size_t(bytes), 0);
    if (a.dtype == fw::DType::f32) {
      float* p = reinterpret_cast<float*>(a.bytes.data());
      for (uint64_t k = 0; k < n; ++k) p[k] = dist(rng);
    }
    arrays.push_back(std::move(a));
  }
  return arrays;
}

std::string shape_text(const fw::Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + (s[i] < 0 ? std::string("?") : std::to_string(s[i]));
  return out + "]";
}

void print_info(const fw::Model& m) {
  for (size_t i = 0; i < m.num_inputs(); ++i) {
    auto v = m.input_info(i);
    std::printf("input  %zu %-16s %-8s %s\n", i, v.name.c_str(), fw::npy::descr(v.dtype), shape_text(v.shape).c_str());
  }
  for (size_t i = 0; i < m.num_outputs(); ++i) {
    auto v = m.output_info(i);
    std::printf("output %zu %-16s %-8s %s\n", i, v.name.c_str(), fw::npy::descr(v.dtype), shape_text(v.shape).c_str());
  }
  std::printf("nodes  %zu\n", m.nodes().size());
}

std::string output_path(const Args& a, size_t k) {
  if (k < a.outputs.size()) return a.outputs[k];
  std::string base = a.outputs.back();
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".npy") == 0) base.resize(base.size() - 4);
  return base + "." + std::to_string(k) + ".npy";
}

// One run into freshly allocated outputs (as Model::run(inputs) does), with node timings.
void run_with_timings(const fw::Model& m, const std::vector<fw::TensorRef>& refs, std::vector<fw::NodeTiming>* t) {
  auto shapes = m.output_shapes([&] {
    std::vector<fw::Shape> s;
    for (auto& r : refs) s.push_back(r.shape);
    return s;
  }());
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<fw::TensorRef> outs;
  for (size_t k = 0; k < shapes.size(); ++k) {
    uint64_t n = 1;
    for (auto d : shapes[k]) n *= uint64_t(d);
    fw::DType dt = m.output_dtype(k);
    bufs.emplace_back(size_t(n * fw::dtype_bytes(dt)) + 1);
    outs.push_back({bufs.back().data(), dt, shapes[k]});
  }
  m.run(refs, outs, t);
}

// The nodes whose first run costs most over a steady run (what a cold start pays for).
void print_first_run_profile(const fw::Model& m, const std::vector<fw::NodeTiming>& first,
                             const std::vector<fw::NodeTiming>& steady) {
  auto nodes = m.nodes();
  double f = 0, st = 0;
  std::vector<std::pair<double, size_t>> extra;
  for (size_t i = 0; i < first.size() && i < steady.size(); ++i) {
    f += first[i].seconds;
    st += steady[i].seconds;
    extra.emplace_back(first[i].seconds - steady[i].seconds, i);
  }
  std::sort(extra.rbegin(), extra.rend());
  std::printf("profile      first run: nodes %.3f ms; second run: nodes %.3f ms\n", f * 1e3, st * 1e3);
  for (size_t k = 0; k < extra.size() && k < 8; ++k) {
    size_t i = extra[k].second;
    std::printf("  node %-4d %-20s first %8.3f ms  second %8.3f ms\n", first[i].node,
                nodes[size_t(first[i].node)].op.c_str(), first[i].seconds * 1e3, steady[i].seconds * 1e3);
  }
}

int run(const Args& a) {
  if (a.threads > 0) fw::set_runtime_threads(a.threads);
  auto t0 = Clock::now();
  fw::ModelOptions options;
  if (a.max_memory) options.max_memory_bytes = a.max_memory;
  options.prepack = a.prepack;
  options.blocked_layout = a.blocked_layout;
  options.alias_views = a.alias_views;
  fw::Model model = fw::Model::load(a.model, options);
  double load_ms = ms_since(t0);
  if (a.info) print_info(model);
  std::vector<fw::npy::Array> arrays;
  if (!a.inputs.empty()) {
    for (const auto& path : a.inputs) arrays.push_back(fw::npy::read(path));
  } else if (a.bench || a.plan) {
    arrays = synthetic_inputs(model, default_shapes(model, a), std::min<uint64_t>(options.max_memory_bytes, uint64_t(1) << 30));
  }
  std::vector<fw::TensorRef> refs;
  std::vector<fw::Shape> shapes;
  for (auto& arr : arrays) {
    refs.push_back({arr.bytes.data(), arr.dtype, arr.shape});
    shapes.push_back(arr.shape);
  }
  if (a.plan) std::printf("%s", model.memory_plan(shapes).c_str());
  if (!a.outputs.empty()) {
    auto outs = model.run(refs);
    for (size_t k = 0; k < outs.size(); ++k)
      fw::npy::write(output_path(a, k), outs[k].dtype, outs[k].shape, outs[k].raw(), outs[k].nbytes);
  }
  if (a.bench) {
    std::vector<fw::NodeTiming> first_nodes, steady_nodes;
    auto t1 = Clock::now();
    run_with_timings(model, refs, a.profile ? &first_nodes : nullptr);
    double first_ms = ms_since(t1);
    if (a.profile) {
      run_with_timings(model, refs, &steady_nodes);
      print_first_run_profile(model, first_nodes, steady_nodes);
    }
    std::vector<double> times;
    for (int i = 0; i < a.bench; ++i) {
      auto t = Clock::now();
      model.run(refs);
      times.push_back(ms_since(t));
    }
    std::sort(times.begin(), times.end());
    auto pct = [&](double q) { return times[std::min(times.size() - 1, size_t(q * double(times.size())))]; };
    std::printf("model        %s\n", a.model.c_str());
    std::printf("threads      %d\n", fw::runtime_threads());
    std::printf("load         %.3f ms\n", load_ms);
    std::printf("first run    %.3f ms\n", first_ms);
    std::printf("cold start   %.3f ms (load + first run)\n", load_ms + first_ms);
    std::printf("steady       median %.3f ms, p90 %.3f ms over %d runs\n", pct(0.5), pct(0.9), a.bench);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // OpenBLAS starts worker threads when its library loads (before main) unless
  // OPENBLAS_NUM_THREADS is 1, and an idle worker spins for a while after it starts. fwrun
  // never runs BLAS multithreaded (framework's pool owns the threads), and that spinning took
  // the second core from the first inference: ResNet-18 cold start 68-85 ms, 33-49 ms with
  // OPENBLAS_NUM_THREADS=1 (2-core VM). So fwrun re-executes itself once with it set.
  if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr && ::setenv("OPENBLAS_NUM_THREADS", "1", 1) == 0)
    ::execv("/proc/self/exe", argv);  // returns only on failure: then run as we are
  Args a = parse_args(argc, argv);
  try {
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fwrun: error: %s\n", e.what());
    return 1;
  }
}
