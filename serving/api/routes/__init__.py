"""One module per resource: route, health, metrics."""
