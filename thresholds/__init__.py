"""Export-control rule data and evaluation. Never imports torch."""
