"""One module per benchmark family; importing one registers it."""
