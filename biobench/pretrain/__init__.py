"""Continued pretraining: MLM twin and CLM detour (see issue: Pretraining)."""
