"""Builds the cffi shim (cext/) at install time; everything else is in pyproject.toml."""
from setuptools import setup

setup(cffi_modules=["cext/build.py:ffibuilder"])
