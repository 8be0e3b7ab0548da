"""The command-line glue of the result and export-control commands: parse, call, render, exit code."""
