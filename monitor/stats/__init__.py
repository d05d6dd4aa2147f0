"""Drift statistics engine (numpy/scipy only; no I/O). Public API grows below."""

from .profiles import (
    CategoricalProfile,
    NumericProfile,
    profile_categorical,
    profile_from_dict,
    profile_numeric,
    reference_profile_categorical,
    reference_profile_numeric,
)

__all__ = [
    "CategoricalProfile",
    "NumericProfile",
    "profile_categorical",
    "profile_from_dict",
    "profile_numeric",
    "reference_profile_categorical",
    "reference_profile_numeric",
]
