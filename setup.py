"""Only the C extension; everything else is in pyproject.toml.

The C twin of the SDK's fast COPY encoder (monitor/sdk/postgres/_speedups.c) is optional:
without a C compiler the build goes on and the SDK uses the Python reference
(monitor/sdk/postgres/fast.py), which writes the same bytes. (Declared
here rather than in pyproject.toml, where setuptools still calls ext-modules experimental.)
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "monitor.sdk.postgres._speedups",
            sources=["monitor/sdk/postgres/_speedups.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
