"""ONNX interchange: `export` a model or traced graph to an ONNX file, `load`/`to_graph` an
ONNX file into a runnable module / the framework IR.

Both directions are driven by the op registry: export by each OpDef's `onnx` mapping
(attached in mappings.py), import by the per-ONNX-op rules in import_rules.py. The `onnx`
package is imported lazily, only when one of these functions runs, so `import framework`
never needs it.
"""

from __future__ import annotations

from ._proto import OnnxError  # noqa: F401  (re-exported)

__all__ = ["export", "load", "to_graph", "OnnxError"]


def to_graph(path_or_bytes):
    """The framework Graph of an ONNX file (initializers as constants, dynamic dims symbolic)."""
    from .importer import to_graph as _to_graph

    return _to_graph(path_or_bytes)


def load(path_or_bytes, backend: str = "auto", optimize: bool = False):
    """A runnable module for an ONNX file (C++ runtime when available, else the interpreter);
    optimize=True first runs the graph passes (fusions, folding) on the imported graph."""
    from .module import OnnxModule

    graph = to_graph(path_or_bytes)
    if optimize:
        from ..jit.passes import optimize as _optimize

        graph = _optimize(graph)
    return OnnxModule(graph, backend=backend)


def export(model_or_traced, args, path, *, input_names=None, output_names=None,
           dynamic_axes=None, opset_version: int = 17):
    """Writes an ONNX file for a model (traced on `args`), a traced module or a Graph."""
    from .exporter import export as _export

    return _export(model_or_traced, args, path, input_names=input_names,
                   output_names=output_names, dynamic_axes=dynamic_axes,
                   opset_version=opset_version)
