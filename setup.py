"""Builds framework._C (pybind11) and the fw_core library with CMake + ninja.

The C++ side is described only in CMakeLists.txt; this file just hands CMake the
paths of the build-time dependencies (pybind11, scipy-openblas32) and copies the
result into the package (or into the source tree for `pip install -e .`).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: CMakeExtension) -> None:
        import pybind11
        import scipy_openblas32

        ext_path = Path(self.get_ext_fullpath(ext.name)).resolve()
        out_dir = ext_path.parent
        build_dir = Path(os.environ.get("FW_BUILD_DIR", ROOT / "build" / "cmake")).resolve()
        build_dir.mkdir(parents=True, exist_ok=True)
        cfg = os.environ.get("FW_BUILD_TYPE", "Release")
        args = [
            f"-DCMAKE_BUILD_TYPE={cfg}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DOpenBLAS_DIR={Path(scipy_openblas32.get_lib_dir()) / 'cmake' / 'openblas'}",
            f"-DFW_EXT_OUTPUT_DIR={out_dir}",
            f"-DFW_EXT_NAME={ext_path.name}",
            "-G",
            "Ninja",
        ]
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_dir), *args], check=True)
        jobs = os.environ.get("FW_BUILD_JOBS", str(os.cpu_count() or 2))
        subprocess.run(
            ["cmake", "--build", str(build_dir), "-j", jobs],
            check=True,
        )
        self._fw_out_dir = out_dir

    def copy_extensions_to_source(self) -> None:
        # --inplace: setuptools copies the extension back; fwrun (framework/bin), the runtime
        # library (framework/lib) and its header (framework/include) come too.
        super().copy_extensions_to_source()
        if not hasattr(self, "_fw_out_dir"):
            return
        for sub in ("bin", "lib", "include"):
            src, dst = self._fw_out_dir / sub, ROOT / "framework" / sub
            if src.is_dir() and src.resolve() != dst.resolve():
                shutil.copytree(src, dst, dirs_exist_ok=True)


setup(ext_modules=[CMakeExtension("framework._C")], cmdclass={"build_ext": CMakeBuild})
