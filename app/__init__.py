"""ShiftScope: watch internal covariate shift happen, live."""

__version__ = "0.1.0"
