"""Recognizer models."""

from imdm.models.recognizer import (
    PRESETS,
    Recognizer,
    RecognizerConfig,
    RecognizerOutput,
    count_parameters,
    recognizer_preset,
)

__all__ = ["PRESETS", "Recognizer", "RecognizerConfig", "RecognizerOutput", "count_parameters", "recognizer_preset"]
