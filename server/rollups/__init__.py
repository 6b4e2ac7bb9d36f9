"""Rollups in the warehouse: build, refresh, status and suggest (CLI `canon rollups ...`), and the router
the runtime asks whether a request can be answered from a built rollup (compiler/rollups.py decides
exactness; this package knows which rollups exist, how fresh they are, and writes them).

    writer.py   a read-write session (the query path opens warehouses read-only)
    store.py    the state table canon_rollups._canon_state: what was built, when, from which data
    build.py    build (a new table, swapped in atomically) and incremental refresh of time partitions
    status.py   built at, rows, bytes, stale?
    suggest.py  rollups proposed from the audit log (what is asked often and could be stored)
    router.py   the runtime's view: built rollups of this catalog version, fresh, smallest first
"""
