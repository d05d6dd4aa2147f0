"""Only the C extension; everything else is in pyproject.toml.

The SDK's COPY encoder in C (monitor/sdk/_speedups.c) is optional: without a C compiler the
build goes on and the SDK uses the pure-Python encoder, which writes the same bytes. (Declared
here rather than in pyproject.toml, where setuptools still calls ext-modules experimental.)
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "monitor.sdk._speedups",
            sources=["monitor/sdk/_speedups.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
