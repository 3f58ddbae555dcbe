// symint.cpp: validation and evaluation of SymInt programs; see symint.h.
#include "runtime/symint.h"

#include "core/error.h"

namespace fw {
namespace {

constexpr size_t kMaxStack = 64;

int operand_count(int64_t op) {
  switch (op) {
    case kSymConst: return 1;
    case kSymDim: return 2;
    default: return 0;
  }
}

int64_t floordiv(int64_t a, int64_t b) {
  FW_CHECK(b != 0, "symbolic shape: division by zero");
  FW_CHECK(!(a == INT64_MIN && b == -1), "symbolic shape: integer overflow");
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t pymod(int64_t a, int64_t b) {
  FW_CHECK(b != 0, "symbolic shape: modulo by zero");
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

}  // namespace

void validate_program(const SymProgram& prog, const std::vector<int>& input_ranks) {
  FW_CHECK(!prog.empty(), "symbolic program is empty");
  size_t depth = 0;
  for (size_t pc = 0; pc < prog.size();) {
    int64_t op = prog[pc];
    FW_CHECK(op >= kSymConst && op <= kSymMin, "symbolic program: unknown opcode ", op, " at word ", pc);
    int n = operand_count(op);
    FW_CHECK(pc + 1 + size_t(n) <= prog.size(), "symbolic program: opcode ", op, " at word ", pc,
             " lacks its operands");
    if (op == kSymDim) {
      int64_t in = prog[pc + 1], axis = prog[pc + 2];
      FW_CHECK(in >= 0 && in < int64_t(input_ranks.size()), "symbolic program: DIM of input ", in,
               ", graph has ", input_ranks.size(), " inputs");
      FW_CHECK(axis >= 0 && axis < input_ranks[size_t(in)], "symbolic program: DIM axis ", axis,
               " of input ", in, " with ", input_ranks[size_t(in)], " dims");
    }
    if (n > 0) {
      ++depth;
      FW_CHECK(depth <= kMaxStack, "symbolic program: stack deeper than ", kMaxStack);
    } else {
      FW_CHECK(depth >= 2, "symbolic program: binary opcode ", op, " at word ", pc, " on a short stack");
      --depth;
    }
    pc += 1 + size_t(n);
  }
  FW_CHECK(depth == 1, "symbolic program leaves ", depth, " values on the stack, expected 1");
}

int64_t eval_program(const SymProgram& prog, const InputShapes& shapes) {
  int64_t stack[kMaxStack];
  size_t sp = 0;
  for (size_t pc = 0; pc < prog.size();) {
    int64_t op = prog[pc];
    if (op == kSymConst || op == kSymDim) {
      FW_CHECK(sp < kMaxStack, "symbolic program: stack overflow");
      if (op == kSymConst) {
        FW_CHECK(pc + 1 < prog.size(), "symbolic program truncated");
        stack[sp++] = prog[pc + 1];
        pc += 2;
      } else {
        FW_CHECK(pc + 2 < prog.size(), "symbolic program truncated");
        int64_t in = prog[pc + 1], axis = prog[pc + 2];
        FW_CHECK(in >= 0 && in < int64_t(shapes.size()) && axis >= 0 &&
                     axis < int64_t(shapes[size_t(in)].size()),
                 "symbolic program: DIM(", in, ", ", axis, ") out of range");
        stack[sp++] = shapes[size_t(in)][size_t(axis)];
        pc += 3;
      }
      continue;
    }
    FW_CHECK(sp >= 2, "symbolic program: stack underflow");
    int64_t b = stack[--sp];
    int64_t a = stack[sp - 1];
    int64_t r = 0;
    switch (op) {
      case kSymAdd: FW_CHECK(!__builtin_add_overflow(a, b, &r), "symbolic shape: integer overflow"); break;
      case kSymSub: FW_CHECK(!__builtin_sub_overflow(a, b, &r), "symbolic shape: integer overflow"); break;
      case kSymMul: FW_CHECK(!__builtin_mul_overflow(a, b, &r), "symbolic shape: integer overflow"); break;
      case kSymFloorDiv: r = floordiv(a, b); break;
      case kSymMod: r = pymod(a, b); break;
      case kSymMax: r = a > b ? a : b; break;
      case kSymMin: r = a < b ? a : b; break;
      default: fail("symbolic program: unknown opcode ", op);
    }
    stack[sp - 1] = r;
    pc += 1;
  }
  FW_CHECK(sp == 1, "symbolic program leaves ", sp, " values on the stack");
  return stack[0];
}

bool program_is_const(const SymProgram& prog, int64_t* value) {
  if (prog.size() != 2 || prog[0] != kSymConst) return false;
  if (value) *value = prog[1];
  return true;
}

}  // namespace fw
