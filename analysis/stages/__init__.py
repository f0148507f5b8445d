"""The analysis stages, one module (or sub-package) each; :mod:`analysis.pipeline` runs them."""
