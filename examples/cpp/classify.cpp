// classify.cpp: loads a model file with the framework C++ runtime and runs it on a batch of
// synthetic inputs (dims that depend on the batch get `batch`), printing each output's shape
// and first values. Usage: classify model.fwm [batch]
#include <framework/runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s model.fwm [batch]\n", argv[0]);
    return 2;
  }
  int64_t batch = argc > 2 ? std::atoll(argv[2]) : 1;
  try {
    fw::Model model = fw::Model::load(argv[1]);
    std::vector<std::vector<float>> buffers;
    std::vector<fw::TensorRef> inputs;
    for (size_t i = 0; i < model.num_inputs(); ++i) {
      fw::ValueInfo info = model.input_info(i);
      if (info.dtype != fw::DType::f32) throw std::runtime_error("this example feeds float32 inputs only");
      int64_t n = 1;
      for (auto& d : info.shape) {
        if (d < 0) d = batch;
        n *= d;
      }
      buffers.emplace_back(size_t(n));
      for (int64_t k = 0; k < n; ++k) buffers.back()[size_t(k)] = float(k % 7) / 7.0f;
      inputs.push_back({buffers.back().data(), fw::DType::f32, info.shape});
    }
    std::vector<fw::OwnedTensor> outputs = model.run(inputs);
    for (size_t k = 0; k < outputs.size(); ++k) {
      const fw::OwnedTensor& out = outputs[k];
      std::printf("output %zu: shape [", k);
      for (size_t d = 0; d < out.shape.size(); ++d) std::printf("%s%lld", d ? ", " : "", (long long)out.shape[d]);
      std::printf("]");
      if (out.dtype == fw::DType::f32)
        for (int64_t i = 0; i < std::min<int64_t>(out.numel(), 4); ++i) std::printf(" %.5f", out.data<float>()[i]);
      std::printf("\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
