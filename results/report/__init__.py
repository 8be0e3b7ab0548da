"""The HTML report: its model, its sections, the page builder and the verdict data it shows."""
