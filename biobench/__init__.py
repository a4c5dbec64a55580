"""biobench: fine-tune, score and compare biomedical encoders."""

__version__ = "0.1.0"
