"""SymInt: arithmetic, simplification, evaluation and the runtime's postfix programs."""

import pytest

from framework.jit.symbolic import SymInt, is_symbolic, run_program, sym_max, sym_min, to_program

N = SymInt.input_dim(0, 0)
M = SymInt.input_dim(1, 2)


def test_constants_simplify_away():
    assert N * 1 is N
    assert N + 0 is N
    assert N * 0 == 0 and isinstance(N * 0, int)
    assert N - N == 0
    assert (N * 12) // 4 == N * 3
    assert (N * 12) % 4 == 0
    assert (N + 2) + 3 == N + 5
    assert 3 * N == N * 3


def test_str_reads_like_math():
    assert str(N) == "N"
    assert str(M) == "d1_2"
    assert str((N + 1) * 4) == "(N+1)*4"
    assert str(sym_max(N, M)) == "max(N, d1_2)"


def test_evaluate_and_program_agree():
    shapes = [(7, 3), (2, 5, 9)]
    exprs = [N, N * 4 + M, (N * M - 3) // 2, (N + M) % 5, sym_max(N, M), sym_min(N, M), -N + 100]
    for e in exprs:
        assert isinstance(e, SymInt)
        want = e.evaluate(shapes)
        assert run_program(to_program(e), shapes) == want
    assert (N * 4 + M).evaluate(shapes) == 37
    assert to_program(5) == [0, 5]
    assert N.to_program() == [1, 0, 0]
    assert (N + M).to_program() == [1, 0, 0, 1, 1, 2, 2]


def test_structural_equality_and_hash():
    assert N + 1 == N + 1
    assert hash(N * 2) == hash(N * 2)
    assert N != M
    assert N != 4
    assert {N: 1}[SymInt.input_dim(0, 0)] == 1


def test_converting_to_int_outside_tracing_is_refused():
    with pytest.raises(TypeError, match="symbolic dim N"):
        int(N)
    with pytest.raises(TypeError):
        range(N)
    with pytest.raises(TypeError, match="cannot decide"):
        _ = N < 3


def test_is_symbolic_nested():
    assert is_symbolic((1, (2, N)))
    assert not is_symbolic((1, 2, "x", None))
