"""Turning comparison, fleet and report data into text, Markdown, HTML and figures.

Nothing here computes a result: each module takes the frozen records (or DataFrames) that
`results.compare`, `results.fleet` and `results.report` return and only formats them."""
