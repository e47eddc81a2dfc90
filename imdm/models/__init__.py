"""Recognizer models."""

from imdm.models.recognizer import (
    PRESETS,
    Recognizer,
    RecognizerConfig,
    RecognizerOutput,
    recognizer_preset,
)
from mdm.models import count_parameters

__all__ = ["PRESETS", "Recognizer", "RecognizerConfig", "RecognizerOutput", "count_parameters", "recognizer_preset"]
