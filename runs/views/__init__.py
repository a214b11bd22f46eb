"""Console views, one module per area; each view: permission check, selector, render."""
