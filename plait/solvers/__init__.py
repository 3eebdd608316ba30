"""Symbolic solvers: CSP models, a safe constraint parser, repair and retraction."""
