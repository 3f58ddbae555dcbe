// symint.h: integer programs for symbolic shapes and attributes (the IR's SymInt).
//
// A program is postfix over int64 words: 0 CONST k | 1 DIM input axis | 2 ADD | 3 SUB | 4 MUL |
// 5 FLOORDIV | 6 MOD | 7 MAX | 8 MIN (binary ops pop two, push one; FLOORDIV and MOD follow
// Python: floor division, remainder with the divisor's sign). The model loader validates a
// program once (opcodes, operands, stack depth, DIM indices); evaluation checks overflow and
// division by zero and throws fw::Error, so a crafted program can never crash the runtime.
#pragma once
#include <cstdint>
#include <vector>

namespace fw {

enum SymOp : int64_t { kSymConst = 0, kSymDim = 1, kSymAdd = 2, kSymSub = 3, kSymMul = 4,
                       kSymFloorDiv = 5, kSymMod = 6, kSymMax = 7, kSymMin = 8 };

using SymProgram = std::vector<int64_t>;
using InputShapes = std::vector<std::vector<int64_t>>;

// Throws fw::Error unless `prog` is well formed for a graph whose inputs have the given ranks.
void validate_program(const SymProgram& prog, const std::vector<int>& input_ranks);

// The program's value for concrete input shapes (validated program assumed; still checked).
int64_t eval_program(const SymProgram& prog, const InputShapes& shapes);

// Whether the program is one CONST (its value in *value).
bool program_is_const(const SymProgram& prog, int64_t* value);

}  // namespace fw
