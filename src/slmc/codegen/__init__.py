"""Code generation: the bound, planned graphs become a plain C project."""
