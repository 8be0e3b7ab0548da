"""The result-file format: schema, compiled validator, store, untrusted input, atomic writes, keys, output folder."""
