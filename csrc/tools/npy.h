// npy.h: a small reader/writer of numpy .npy files (format 1.0-3.0, little-endian,
// C order; float32/float64/int32/int64/bool) for fwrun. Header-only, no Python. Files are
// validated (magic, header length, dtype, shape, data size) and errors throw fw::Error.
#pragma once
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace fw {
namespace npy {

struct Array {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

inline size_t item_size(DType t) { return dtype_bytes(t); }

inline const char* descr(DType t) {
  switch (t) {
    case DType::f32: return "<f4";
    case DType::f64: return "<f8";
    case DType::i32: return "<i4";
    case DType::i64: return "<i8";
    case DType::b8: return "|b1";
  }
  return "?";
}

inline std::string dict_value(const std::string& header, const std::string& key, const std::string& path) {
  size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) throw Error("npy file '" + path + "': header has no '" + key + "'");
  size_t colon = header.find(':', k);
  if (colon == std::string::npos) throw Error("npy file '" + path + "': malformed header");
  size_t b = header.find_first_not_of(' ', colon + 1);
  if (b == std::string::npos) throw Error("npy file '" + path + "': malformed header");
  size_t e = header[b] == '(' ? header.find(')', b) + 1 : header.find_first_of(",}", b);
  if (e == std::string::npos || e == 0) throw Error("npy file '" + path + "': malformed header");
  return header.substr(b, e - b);
}

inline Array read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open npy file '" + path + "'");
  std::string content((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto bad = [&](const std::string& why) { return Error("npy file '" + path + "': " + why); };
  if (content.size() < 10 || content.compare(0, 6, "\x93NUMPY") != 0) throw bad("not a .npy file (bad magic)");
  uint8_t major = uint8_t(content[6]);
  size_t hlen, hstart;
  if (major == 1) {
    hlen = uint8_t(content[8]) | (size_t(uint8_t(content[9])) << 8);
    hstart = 10;
  } else if (major == 2 || major == 3) {
    if (content.size() < 12) throw bad("truncated header");
    hlen = 0;
    for (int i = 0; i < 4; ++i) hlen |= size_t(uint8_t(content[8 + i])) << (8 * i);
    hstart = 12;
  } else {
    throw bad("unsupported .npy version " + std::to_string(major));
  }
  if (hlen > content.size() - hstart) throw bad("truncated header");
  std::string header = content.substr(hstart, hlen);
  std::string d = dict_value(header, "descr", path);
  std::string fo = dict_value(header, "fortran_order", path);
  std::string sh = dict_value(header, "shape", path);
  if (fo.find("False") == std::string::npos) throw bad("Fortran-order arrays are not supported");
  Array a;
  std::string code = d.size() >= 2 ? d.substr(1, d.size() - 2) : "";
  if (code == "<f4" || code == "=f4") a.dtype = DType::f32;
  else if (code == "<f8" || code == "=f8") a.dtype = DType::f64;
  else if (code == "<i4" || code == "=i4") a.dtype = DType::i32;
  else if (code == "<i8" || code == "=i8") a.dtype = DType::i64;
  else if (code == "|b1") a.dtype = DType::b8;
  else throw bad("unsupported dtype " + d + " (float32, float64, int32, int64, bool only)");
  uint64_t numel = 1;
  std::string inner = sh.size() >= 2 ? sh.substr(1, sh.size() - 2) : "";
  std::stringstream ss(inner);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t b = item.find_first_not_of(' ');
    if (b == std::string::npos) continue;
    char* end = nullptr;
    long long v = std::strtoll(item.c_str() + b, &end, 10);
    if (end == item.c_str() + b || v < 0) throw bad("bad shape " + sh);
    a.shape.push_back(v);
    if (__builtin_mul_overflow(numel, uint64_t(v), &numel)) throw bad("shape too large");
  }
  if (a.shape.size() > 8) throw bad("more than 8 dims");
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, uint64_t(item_size(a.dtype)), &nbytes)) throw bad("shape too large");
  size_t data_start = hstart + hlen;
  if (content.size() - data_start != nbytes)
    throw bad("has " + std::to_string(content.size() - data_start) + " data bytes, its shape needs " +
              std::to_string(nbytes));
  a.bytes.assign(content.begin() + long(data_start), content.end());
  return a;
}

inline void write(const std::string& path, DType dtype, const std::vector<int64_t>& shape, const void* data,
                  size_t nbytes) {
  std::ostringstream h;
  h << "{'descr': '" << descr(dtype) << "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) h << shape[i] << (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
  h << "), }";
  std::string header = h.str();
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream f(path, std::ios::binary);
  if (!f) throw Error("cannot write npy file '" + path + "'");
  uint16_t hl = uint16_t(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  char len[2] = {char(hl & 0xff), char(hl >> 8)};
  f.write(len, 2);
  f.write(header.data(), std::streamsize(header.size()));
  f.write(static_cast<const char*>(data), std::streamsize(nbytes));
  if (!f) throw Error("error writing npy file '" + path + "'");
}

}  // namespace npy
}  // namespace fw
