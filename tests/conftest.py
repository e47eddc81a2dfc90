"""Settings for the whole suite: nothing may be downloaded (models come from installed packages)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
