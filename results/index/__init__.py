"""The fleet index: result files as a partitioned Parquet dataset, kept up to date incrementally
and queried with SQL (DuckDB), so fleet questions scale with the fleet, not with its history.

    layout.py   the folder: manifest (format marker + version, the commit point), partitions, parts
    tables.py   the two tables' Arrow schemas: one row per measurement, one row per result file
    parse.py    worker side: fingerprint, read, hash and parse a chunk of result files into rows
    build.py    build or update an index from PATHs: only new or changed files are parsed
    queries.py  the SQL: fleet statistics, outliers, slowest GPU per host, exports, file selection
    command.py  the `tppbench index` sub-command
"""
