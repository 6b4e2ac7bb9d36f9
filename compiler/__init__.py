"""Canon's compiler: YAML definitions -> validated catalog -> query plan -> sqlglot AST -> SQL.

Pure functions over immutable data; no I/O except reading the definition files in `load`.
"""
