"""Render pass: plan nodes -> sqlglot expression trees (one module per node kind)."""
