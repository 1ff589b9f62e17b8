"""Build pysud's native core.  Everything else about the package is in pyproject.toml.

setuptools' compiler does not list assembler sources (.S), so build_ext adds them.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    def build_extensions(self) -> None:
        self.compiler.src_extensions.append(".S")
        super().build_extensions()


CORE = "src/pysud/_core/"
setup(
    ext_modules=[
        Extension(
            "pysud._core",
            sources=[
                CORE + "module.c",
                CORE + "frame.c",
                CORE + "policy.c",
                CORE + "ring.c",
                CORE + "trace_format.c",
                CORE + "hook.c",
                CORE + "arm.c",
                CORE + "memory.c",
                CORE + "bench.c",
                CORE + "guest.c",
                CORE + "sud_signal.c",
                CORE + "sud_dispatch.c",
                CORE + "sud_thread.c",
                CORE + "sud_guest.c",
                CORE + "sud_vsig.c",
                CORE + "sud_trace.c",
                CORE + "sud_rewrite.c",
                CORE + "rewrite.c",
                CORE + "sud_filter.c",
                CORE + "sud_entry.S",
            ],
            depends=[CORE + "sud.h", CORE + "core.h"],
            include_dirs=[CORE],
            extra_compile_args=[
                "-std=gnu11",
                "-O2",
                "-Wall",
                "-Wextra",
                "-Wno-missing-field-initializers",
                "-Wno-cast-function-type",
                "-fvisibility=hidden",
                # FS may belong to foreign code in signal context: no canary reads.
                "-fno-stack-protector",
                "-mfsgsbase",
                "-mxsave",
            ],
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
