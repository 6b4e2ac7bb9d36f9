"""pg_catalog and information_schema, emulated in an in-memory DuckDB.

The tables PostgreSQL clients read on connect and when browsing (pg_class, pg_attribute, pg_type, ...)
are materialized from the catalog's views into a private in-memory DuckDB, rebuilt when the catalog
changes. A client's catalog query is parsed with sqlglot (postgres), its references are moved onto
these tables and a few PostgreSQL-only constructs are rewritten (OPERATOR(pg_catalog.~), ::regclass,
session functions), then it runs there and its result types map back to PostgreSQL OIDs. That DuckDB
holds nothing but this metadata and has external access disabled: no file or network reads. A client's
query must pass catalog_guard's allow-list (read-only shapes, known tables and functions) and runs on a
read-only copy of the metadata, so no session can change what another one sees.
"""

from __future__ import annotations

import threading

import duckdb
from sqlglot import exp
from sqlglot.errors import SqlglotError

from . import types as t
from .errors import FEATURE_NOT_SUPPORTED, SYNTAX_ERROR, UNDEFINED_FUNCTION, UNDEFINED_TABLE, PgError
from .catalog_guard import catalog_tables, check_catalog_query, function_name, macro_names, read_only_copy
from .pg_functions import PG_FUNCTION_MACROS, pg_format, proc_rows, regproc_comparison, type_function_oids
from .array_literals import any_array_literal
from .regtype_arrays import REGTYPE_ARRAY_MACROS, regtype_array, regtype_comparison
from .views import ViewTable

SERVER_VERSION = "16.0"
VERSION_TEXT = f"PostgreSQL {SERVER_VERSION} (Canon semantic layer) on x86_64-pc-linux-gnu, compiled by Canon, 64-bit"
PG_CATALOG_OID, PUBLIC_OID, INFO_SCHEMA_OID = 11, 2200, 13000
FIRST_TABLE_OID = 16384
OWNER_OID = 10
DATABASE_OID = 16383

SETTINGS = {
    "server_version": SERVER_VERSION, "server_version_num": "160000", "server_encoding": "UTF8",
    "client_encoding": "UTF8", "datestyle": "ISO, MDY", "timezone": "UTC", "intervalstyle": "postgres",
    "integer_datetimes": "on", "standard_conforming_strings": "on", "search_path": '"$user", public',
    "transaction_isolation": "read committed", "default_transaction_isolation": "read committed",
    "transaction_read_only": "on", "default_transaction_read_only": "on", "max_identifier_length": "63",
    "lc_collate": "C", "lc_ctype": "C", "lc_messages": "C", "lc_monetary": "C", "lc_numeric": "C", "lc_time": "C",
    "extra_float_digits": "1", "application_name": "", "is_superuser": "off", "session_authorization": "canon",
    "bytea_output": "hex", "statement_timeout": "0", "default_transaction_deferrable": "off",
    "max_connections": "100", "default_table_access_method": "heap", "block_size": "8192", "ssl": "off", "in_hot_standby": "off",
    "max_index_keys": "32",  # pgJDBC getImportedKeys reads it
}
# sent to the client after authentication
REPORTED = ("server_version", "server_encoding", "client_encoding", "DateStyle", "TimeZone", "IntervalStyle",
            "integer_datetimes", "standard_conforming_strings", "is_superuser", "session_authorization",
            "application_name", "default_transaction_read_only", "in_hot_standby")

_TABLES: dict[str, str] = {
    "pg_namespace": "oid BIGINT, nspname VARCHAR, nspowner BIGINT, nspacl VARCHAR",
    "pg_class": "oid BIGINT, relname VARCHAR, relnamespace BIGINT, reltype BIGINT, reloftype BIGINT, relowner BIGINT, "
                "relam BIGINT, relfilenode BIGINT, reltablespace BIGINT, relpages INTEGER, reltuples FLOAT, "
                "relallvisible INTEGER, reltoastrelid BIGINT, relhasindex BOOLEAN, relisshared BOOLEAN, "
                "relpersistence VARCHAR, relkind VARCHAR, relnatts SMALLINT, relchecks SMALLINT, relhasoids BOOLEAN, "
                "relhasrules BOOLEAN, relhastriggers BOOLEAN, relhassubclass BOOLEAN, relrowsecurity BOOLEAN, "
                "relforcerowsecurity BOOLEAN, relispopulated BOOLEAN, relreplident VARCHAR, relispartition BOOLEAN, "
                "relrewrite BIGINT, relfrozenxid BIGINT, relminmxid BIGINT, relacl VARCHAR[], reloptions VARCHAR[], "
                "relpartbound VARCHAR",
    "pg_attribute": "attrelid BIGINT, attname VARCHAR, atttypid BIGINT, attstattarget INTEGER, attlen SMALLINT, "
                    "attnum SMALLINT, attndims INTEGER, attcacheoff INTEGER, atttypmod INTEGER, attbyval BOOLEAN, "
                    "attstorage VARCHAR, attalign VARCHAR, attnotnull BOOLEAN, atthasdef BOOLEAN, "
                    "atthasmissing BOOLEAN, attidentity VARCHAR, attgenerated VARCHAR, attisdropped BOOLEAN, "
                    "attislocal BOOLEAN, attinhcount INTEGER, attcollation BIGINT, attacl VARCHAR[], "
                    "attoptions VARCHAR[], attfdwoptions VARCHAR[], attmissingval VARCHAR, attcompression VARCHAR",
    "pg_type": "oid BIGINT, typname VARCHAR, typnamespace BIGINT, typowner BIGINT, typlen SMALLINT, typbyval BOOLEAN, "
               "typtype VARCHAR, typcategory VARCHAR, typispreferred BOOLEAN, typisdefined BOOLEAN, typdelim VARCHAR, "
               "typrelid BIGINT, typsubscript VARCHAR, typelem BIGINT, typarray BIGINT, typinput BIGINT, "
               "typoutput BIGINT, typreceive BIGINT, typsend BIGINT, typmodin VARCHAR, typmodout VARCHAR, "
               "typanalyze VARCHAR, typalign VARCHAR, typstorage VARCHAR, typnotnull BOOLEAN, typbasetype BIGINT, "
               "typtypmod INTEGER, typndims INTEGER, typcollation BIGINT, typdefaultbin VARCHAR, typdefault VARCHAR, "
               "typacl VARCHAR[]",
    "pg_database": "oid BIGINT, datname VARCHAR, datdba BIGINT, encoding INTEGER, datlocprovider VARCHAR, "
                   "datistemplate BOOLEAN, datallowconn BOOLEAN, datconnlimit INTEGER, datlastsysoid BIGINT, "
                   "datfrozenxid BIGINT, datminmxid BIGINT, dattablespace BIGINT, datcollate VARCHAR, "
                   "datctype VARCHAR, daticulocale VARCHAR, datcollversion VARCHAR, datacl VARCHAR[]",
    "pg_settings": "name VARCHAR, setting VARCHAR, unit VARCHAR, category VARCHAR, short_desc VARCHAR, "
                   "extra_desc VARCHAR, context VARCHAR, vartype VARCHAR, source VARCHAR, min_val VARCHAR, "
                   "max_val VARCHAR, enumvals VARCHAR[], boot_val VARCHAR, reset_val VARCHAR, sourcefile VARCHAR, "
                   "sourceline INTEGER, pending_restart BOOLEAN",
    "pg_proc": "oid BIGINT, proname VARCHAR, pronamespace BIGINT, proowner BIGINT, prolang BIGINT, procost FLOAT, "
               "prorows FLOAT, provariadic BIGINT, prosupport VARCHAR, prokind VARCHAR, prosecdef BOOLEAN, "
               "proleakproof BOOLEAN, proisstrict BOOLEAN, proretset BOOLEAN, provolatile VARCHAR, "
               "proparallel VARCHAR, pronargs SMALLINT, pronargdefaults SMALLINT, prorettype BIGINT, "
               "proargtypes VARCHAR, proallargtypes BIGINT[], proargmodes VARCHAR[], proargnames VARCHAR[], "
               "proargdefaults VARCHAR, protrftypes BIGINT[], prosrc VARCHAR, probin VARCHAR, prosqlbody VARCHAR, "
               "proconfig VARCHAR[], proacl VARCHAR[], proisagg BOOLEAN, proiswindow BOOLEAN",
    "pg_roles": "oid BIGINT, rolname VARCHAR, rolsuper BOOLEAN, rolinherit BOOLEAN, rolcreaterole BOOLEAN, "
                "rolcreatedb BOOLEAN, rolcanlogin BOOLEAN, rolreplication BOOLEAN, rolconnlimit INTEGER, "
                "rolpassword VARCHAR, rolvaliduntil TIMESTAMP, rolbypassrls BOOLEAN, rolconfig VARCHAR[]",
    "pg_user": "usename VARCHAR, usesysid BIGINT, usecreatedb BOOLEAN, usesuper BOOLEAN, userepl BOOLEAN, "
               "usebypassrls BOOLEAN, passwd VARCHAR, valuntil TIMESTAMP, useconfig VARCHAR[]",
    "pg_description": "objoid BIGINT, classoid BIGINT, objsubid INTEGER, description VARCHAR",
    "pg_shdescription": "objoid BIGINT, classoid BIGINT, description VARCHAR",
    "pg_index": "indexrelid BIGINT, indrelid BIGINT, indnatts SMALLINT, indnkeyatts SMALLINT, indisunique BOOLEAN, "
                "indnullsnotdistinct BOOLEAN, indisprimary BOOLEAN, indisexclusion BOOLEAN, indimmediate BOOLEAN, "
                "indisclustered BOOLEAN, indisvalid BOOLEAN, indcheckxmin BOOLEAN, indisready BOOLEAN, "
                "indislive BOOLEAN, indisreplident BOOLEAN, indkey SMALLINT[], indcollation BIGINT[], "
                "indclass BIGINT[], indoption SMALLINT[], indexprs VARCHAR, indpred VARCHAR",
    "pg_am": "oid BIGINT, amname VARCHAR, amhandler VARCHAR, amtype VARCHAR",
    "pg_attrdef": "oid BIGINT, adrelid BIGINT, adnum SMALLINT, adbin VARCHAR",
    "pg_constraint": "oid BIGINT, conname VARCHAR, connamespace BIGINT, contype VARCHAR, condeferrable BOOLEAN, "
                     "condeferred BOOLEAN, convalidated BOOLEAN, conrelid BIGINT, contypid BIGINT, conindid BIGINT, "
                     "conparentid BIGINT, confrelid BIGINT, confupdtype VARCHAR, confdeltype VARCHAR, "
                     "confmatchtype VARCHAR, conislocal BOOLEAN, coninhcount INTEGER, connoinherit BOOLEAN, "
                     "conkey SMALLINT[], confkey SMALLINT[], conpfeqop BIGINT[], conppeqop BIGINT[], "
                     "conffeqop BIGINT[], conexclop BIGINT[], conbin VARCHAR",
    "pg_inherits": "inhrelid BIGINT, inhparent BIGINT, inhseqno INTEGER, inhdetachpending BOOLEAN",
    "pg_policy": "oid BIGINT, polname VARCHAR, polrelid BIGINT, polcmd VARCHAR, polpermissive BOOLEAN, "
                 "polroles BIGINT[], polqual VARCHAR, polwithcheck VARCHAR",
    "pg_statistic_ext": "oid BIGINT, stxrelid BIGINT, stxname VARCHAR, stxnamespace BIGINT, stxowner BIGINT, "
                        "stxstattarget INTEGER, stxkeys SMALLINT[], stxkind VARCHAR[], stxexprs VARCHAR",
    "pg_publication": "oid BIGINT, pubname VARCHAR, pubowner BIGINT, puballtables BOOLEAN, pubinsert BOOLEAN, "
                      "pubupdate BOOLEAN, pubdelete BOOLEAN, pubtruncate BOOLEAN, pubviaroot BOOLEAN",
    "pg_publication_rel": "oid BIGINT, prpubid BIGINT, prrelid BIGINT, prqual VARCHAR, prattrs SMALLINT[]",
    "pg_publication_namespace": "oid BIGINT, pnpubid BIGINT, pnnspid BIGINT",
    "pg_trigger": "oid BIGINT, tgrelid BIGINT, tgparentid BIGINT, tgname VARCHAR, tgfoid BIGINT, tgtype SMALLINT, "
                  "tgenabled VARCHAR, tgisinternal BOOLEAN, tgconstrrelid BIGINT, tgconstrindid BIGINT, "
                  "tgconstraint BIGINT, tgdeferrable BOOLEAN, tginitdeferred BOOLEAN, tgnargs SMALLINT, "
                  "tgattr SMALLINT[], tgargs VARCHAR, tgqual VARCHAR, tgoldtable VARCHAR, tgnewtable VARCHAR",
    "pg_rewrite": "oid BIGINT, rulename VARCHAR, ev_class BIGINT, ev_type VARCHAR, ev_enabled VARCHAR, "
                  "is_instead BOOLEAN, ev_qual VARCHAR, ev_action VARCHAR",
    "pg_collation": "oid BIGINT, collname VARCHAR, collnamespace BIGINT, collowner BIGINT, collprovider VARCHAR, "
                    "collisdeterministic BOOLEAN, collencoding INTEGER, collcollate VARCHAR, collctype VARCHAR",
    "pg_tablespace": "oid BIGINT, spcname VARCHAR, spcowner BIGINT, spcacl VARCHAR[], spcoptions VARCHAR[]",
    "pg_extension": "oid BIGINT, extname VARCHAR, extowner BIGINT, extnamespace BIGINT, extrelocatable BOOLEAN, "
                    "extversion VARCHAR, extconfig BIGINT[], extcondition VARCHAR[]",
    "pg_enum": "oid BIGINT, enumtypid BIGINT, enumsortorder FLOAT, enumlabel VARCHAR",
    "pg_range": "rngtypid BIGINT, rngsubtype BIGINT, rngmultitypid BIGINT, rngcollation BIGINT, "
                "rngsubopc BIGINT, rngcanonical VARCHAR, rngsubdiff VARCHAR",
    "pg_depend": "classid BIGINT, objid BIGINT, objsubid INTEGER, refclassid BIGINT, refobjid BIGINT, "
                 "refobjsubid INTEGER, deptype VARCHAR",
    "pg_foreign_table": "ftrelid BIGINT, ftserver BIGINT, ftoptions VARCHAR[]",
    "pg_foreign_server": "oid BIGINT, srvname VARCHAR, srvowner BIGINT, srvfdw BIGINT, srvtype VARCHAR, "
                         "srvversion VARCHAR, srvacl VARCHAR[], srvoptions VARCHAR[]",
    "pg_foreign_data_wrapper": "oid BIGINT, fdwname VARCHAR, fdwowner BIGINT, fdwhandler BIGINT, "
                               "fdwvalidator BIGINT, fdwacl VARCHAR[], fdwoptions VARCHAR[]",
    "pg_partitioned_table": "partrelid BIGINT, partstrat VARCHAR, partnatts SMALLINT, partdefid BIGINT, "
                            "partattrs SMALLINT[], partclass BIGINT[], partcollation BIGINT[], partexprs VARCHAR",
    "pg_sequence": "seqrelid BIGINT, seqtypid BIGINT, seqstart BIGINT, seqincrement BIGINT, seqmax BIGINT, "
                   "seqmin BIGINT, seqcache BIGINT, seqcycle BOOLEAN",
    "pg_language": "oid BIGINT, lanname VARCHAR, lanowner BIGINT, lanispl BOOLEAN, lanpltrusted BOOLEAN",
    "pg_operator": "oid BIGINT, oprname VARCHAR, oprnamespace BIGINT, oprowner BIGINT, oprkind VARCHAR, "
                   "oprleft BIGINT, oprright BIGINT, oprresult BIGINT, oprcode VARCHAR",
    "pg_opclass": "oid BIGINT, opcmethod BIGINT, opcname VARCHAR, opcnamespace BIGINT, opcowner BIGINT, "
                  "opcfamily BIGINT, opcintype BIGINT, opcdefault BOOLEAN, opckeytype BIGINT",
    "pg_opfamily": "oid BIGINT, opfmethod BIGINT, opfname VARCHAR, opfnamespace BIGINT, opfowner BIGINT",
    "pg_cast": "oid BIGINT, castsource BIGINT, casttarget BIGINT, castfunc BIGINT, castcontext VARCHAR, "
               "castmethod VARCHAR",
    "pg_event_trigger": "oid BIGINT, evtname VARCHAR, evtevent VARCHAR, evtowner BIGINT, evtfoid BIGINT, "
                        "evtenabled VARCHAR, evttags VARCHAR[]",
    "pg_auth_members": "oid BIGINT, roleid BIGINT, member BIGINT, grantor BIGINT, admin_option BOOLEAN",
    "pg_tables": "schemaname VARCHAR, tablename VARCHAR, tableowner VARCHAR, tablespace VARCHAR, "
                 "hasindexes BOOLEAN, hasrules BOOLEAN, hastriggers BOOLEAN, rowsecurity BOOLEAN",
    "pg_views": "schemaname VARCHAR, viewname VARCHAR, viewowner VARCHAR, definition VARCHAR",
    "pg_matviews": "schemaname VARCHAR, matviewname VARCHAR, matviewowner VARCHAR, tablespace VARCHAR, "
                   "hasindexes BOOLEAN, ispopulated BOOLEAN, definition VARCHAR",
    "pg_indexes": "schemaname VARCHAR, tablename VARCHAR, indexname VARCHAR, tablespace VARCHAR, indexdef VARCHAR",
    "pg_stat_activity": "datid BIGINT, datname VARCHAR, pid INTEGER, usename VARCHAR, application_name VARCHAR, "
                        "client_addr VARCHAR, backend_start TIMESTAMP, state VARCHAR, query VARCHAR",
    "pg_timezone_names": "name VARCHAR, abbrev VARCHAR, utc_offset INTERVAL, is_dst BOOLEAN",
    "pg_stat_user_tables": "relid BIGINT, schemaname VARCHAR, relname VARCHAR, seq_scan BIGINT, seq_tup_read BIGINT, "
                           "idx_scan BIGINT, idx_tup_fetch BIGINT, n_tup_ins BIGINT, n_tup_upd BIGINT, "
                           "n_tup_del BIGINT, n_tup_hot_upd BIGINT, n_live_tup BIGINT, n_dead_tup BIGINT, "
                           "last_vacuum TIMESTAMP, last_autovacuum TIMESTAMP, last_analyze TIMESTAMP, "
                           "last_autoanalyze TIMESTAMP",
}
_INFO_TABLES: dict[str, str] = {
    "schemata": "catalog_name VARCHAR, schema_name VARCHAR, schema_owner VARCHAR, default_character_set_catalog VARCHAR, "
                "default_character_set_schema VARCHAR, default_character_set_name VARCHAR, sql_path VARCHAR",
    "tables": "table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, table_type VARCHAR, "
              "self_referencing_column_name VARCHAR, reference_generation VARCHAR, user_defined_type_catalog VARCHAR, "
              "user_defined_type_schema VARCHAR, user_defined_type_name VARCHAR, is_insertable_into VARCHAR, "
              "is_typed VARCHAR, commit_action VARCHAR",
    "views": "table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, view_definition VARCHAR, "
             "check_option VARCHAR, is_updatable VARCHAR, is_insertable_into VARCHAR",
    "columns": "table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, column_name VARCHAR, "
               "ordinal_position INTEGER, column_default VARCHAR, is_nullable VARCHAR, data_type VARCHAR, "
               "character_maximum_length INTEGER, character_octet_length INTEGER, numeric_precision INTEGER, "
               "numeric_precision_radix INTEGER, numeric_scale INTEGER, datetime_precision INTEGER, "
               "interval_type VARCHAR, udt_catalog VARCHAR, udt_schema VARCHAR, udt_name VARCHAR, "
               "is_identity VARCHAR, is_generated VARCHAR, is_updatable VARCHAR, collation_name VARCHAR, "
               "dtd_identifier VARCHAR",
    "table_constraints": "constraint_catalog VARCHAR, constraint_schema VARCHAR, constraint_name VARCHAR, "
                         "table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, constraint_type VARCHAR, "
                         "is_deferrable VARCHAR, initially_deferred VARCHAR, enforced VARCHAR",
    "key_column_usage": "constraint_catalog VARCHAR, constraint_schema VARCHAR, constraint_name VARCHAR, "
                        "table_catalog VARCHAR, table_schema VARCHAR, table_name VARCHAR, column_name VARCHAR, "
                        "ordinal_position INTEGER, position_in_unique_constraint INTEGER",
    "referential_constraints": "constraint_catalog VARCHAR, constraint_schema VARCHAR, constraint_name VARCHAR, "
                               "unique_constraint_catalog VARCHAR, unique_constraint_schema VARCHAR, "
                               "unique_constraint_name VARCHAR, match_option VARCHAR, update_rule VARCHAR, "
                               "delete_rule VARCHAR",
    "routines": "specific_name VARCHAR, routine_catalog VARCHAR, routine_schema VARCHAR, routine_name VARCHAR, "
                "routine_type VARCHAR, data_type VARCHAR",
    "character_sets": "character_set_catalog VARCHAR, character_set_schema VARCHAR, character_set_name VARCHAR",
    "enabled_roles": "role_name VARCHAR",
}

# PostgreSQL functions clients call in catalog queries, as DuckDB macros over the tables above
_MACRO_BODIES = [
    "pg_table_is_visible(x) AS true", "pg_type_is_visible(x) AS true", "pg_function_is_visible(x) AS true",
    "pg_get_userbyid(x) AS 'canon'",
    "format_type(x, m) AS (SELECT coalesce(max(f.name), 'unknown') FROM canon_pg.format_names f WHERE f.oid = x)",
    "obj_description(x, c := NULL) AS (SELECT max(d.description) FROM canon_pg.pg_description d "
    "WHERE d.objoid = x AND d.objsubid = 0)",
    "col_description(x, n) AS (SELECT max(d.description) FROM canon_pg.pg_description d "
    "WHERE d.objoid = x AND d.objsubid = n)",
    "shobj_description(x, c) AS NULL::VARCHAR",
    "pg_get_expr(x, y, p := false) AS NULL::VARCHAR", "pg_get_indexdef(x, c := 0, p := false) AS NULL::VARCHAR",
    "pg_get_constraintdef(x, p := false) AS NULL::VARCHAR", "pg_get_viewdef(x, p := false) AS NULL::VARCHAR",
    "pg_get_triggerdef(x, p := false) AS NULL::VARCHAR", "pg_get_statisticsobjdef_columns(x) AS NULL::VARCHAR",
    "pg_get_partkeydef(x) AS NULL::VARCHAR", "pg_get_function_identity_arguments(x) AS ''",
    "pg_get_function_result(x) AS NULL::VARCHAR", "pg_get_function_arguments(x) AS ''",
    "pg_encoding_to_char(x) AS 'UTF8'", "pg_char_to_encoding(x) AS 6",
    "has_table_privilege(a, b, c := NULL) AS true", "has_schema_privilege(a, b, c := NULL) AS true",
    "has_database_privilege(a, b, c := NULL) AS true", "has_column_privilege(a, b, c := NULL, d := NULL) AS true",
    "has_function_privilege(a, b, c := NULL) AS true", "pg_has_role(a, b, c := NULL) AS true",
    "pg_is_in_recovery() AS false", "pg_postmaster_start_time() AS TIMESTAMP '2024-01-01 00:00:00'",
    "pg_total_relation_size(x) AS 0::BIGINT", "pg_relation_size(x, f := NULL) AS 0::BIGINT",
    "pg_table_size(x) AS 0::BIGINT", "pg_size_pretty(x) AS '0 bytes'", "pg_relation_is_publishable(x) AS false",
    "txid_current() AS 1::BIGINT", "pg_current_xact_id() AS 1::BIGINT", "pg_is_other_temp_schema(x) AS false",
    "pg_my_temp_schema() AS 0::BIGINT", "inet_server_addr() AS '127.0.0.1'", "inet_server_port() AS 5433",
    "inet_client_addr() AS '127.0.0.1'", "pg_get_serial_sequence(t, c) AS NULL::VARCHAR",
    "canon_regclass(x) AS (SELECT max(c.oid) FROM canon_pg.pg_class c WHERE c.relname = lower(trim(x, '\"')) "
    "OR 'public.' || c.relname = lower(x) OR 'pg_catalog.' || c.relname = lower(x))",
    "canon_relname(x) AS coalesce((SELECT max(c.relname) FROM canon_pg.pg_class c WHERE c.oid = x), x::VARCHAR)",
    "canon_regtype(x) AS coalesce((SELECT max(ty.oid) FROM canon_pg.pg_type ty WHERE ty.typname = "
    "lower(replace(x, 'pg_catalog.', ''))), (SELECT max(f.oid) FROM canon_pg.format_names f WHERE f.name = "
    "lower(replace(x, 'pg_catalog.', ''))))",
    "canon_typname(x) AS coalesce((SELECT max(f.name) FROM canon_pg.format_names f WHERE f.oid = x), x::VARCHAR)",
    "pg_collation_is_visible(x) AS true", "pg_opclass_is_visible(x) AS true",
    "to_regtype(x) AS canon_regtype(x)", "to_regclass(x) AS canon_regclass(x)",
    "array_upper(a, d) AS len(a)", "array_lower(a, d) AS 1",
]


_MACRO_BODIES += PG_FUNCTION_MACROS  # format/quote_ident/_pg_expandarray/pg_size_pretty (pg_functions.py)
_MACRO_BODIES += REGTYPE_ARRAY_MACROS  # x::regtype[] as type names (regtype_arrays.py)
_MACROS = ["CREATE OR REPLACE MACRO " + body for body in _MACRO_BODIES]  # constant statements


def _create_table(schema: str, name: str, columns: str) -> str:
    """CREATE TABLE from a constant 'name TYPE, ...' list, built as a sqlglot tree."""
    defs = []
    for column in columns.split(","):
        column_name, kind = column.split(None, 1)
        defs.append(exp.ColumnDef(this=exp.to_identifier(column_name), kind=exp.DataType.build(kind, dialect="duckdb")))
    return exp.Create(this=exp.Schema(this=exp.table_(name, db=schema), expressions=defs), kind="TABLE").sql("duckdb")


def _insert_statement(schema: str, table: str, names: list[str], count: int = 1) -> str:
    """INSERT INTO schema.table (names) VALUES (?, ...), ... for `count` rows: values travel as parameters."""
    target = exp.Schema(this=exp.table_(table, db=schema), expressions=[exp.to_identifier(n) for n in names])
    row = exp.Tuple(expressions=[exp.Placeholder() for _ in names])
    values = exp.Values(expressions=[row.copy() for _ in range(count)])
    return exp.Insert(this=target, expression=values).sql("duckdb")


INSERT_BATCH = 256  # rows per INSERT: DuckDB's executemany runs one statement per row, 3x slower here


class PgCatalog:
    """The metadata DuckDB for one version of the catalog."""

    def __init__(self, views: dict[str, ViewTable]):
        self.views = views
        self.table_oids = {name: FIRST_TABLE_OID + 2 * i for i, name in enumerate(views)}
        self._db = duckdb.connect(":memory:")
        self._lock = threading.Lock()
        self._build()
        self._db = read_only_copy(self._db)  # clients' queries run where nothing can be written
        self._tables = catalog_tables(self._db)
        self._functions = macro_names(_MACRO_BODIES)

    def _build(self) -> None:
        db = self._db
        db.execute("CREATE SCHEMA canon_pg")
        db.execute("CREATE SCHEMA canon_is")
        for name, columns in _TABLES.items():
            db.execute(_create_table("canon_pg", name, columns))
        for name, columns in _INFO_TABLES.items():
            db.execute(_create_table("canon_is", name, columns))
        db.execute("CREATE TABLE canon_pg.format_names (oid BIGINT, name VARCHAR)")
        db.executemany("INSERT INTO canon_pg.format_names VALUES (?, ?)",
                       [(oid, t.FORMAT_NAMES.get(oid, name)) for name, oid, *_ in t.BUILTIN_TYPES])
        for macro in _MACROS:
            db.execute(macro)

        def insert(table: str, rows: list[dict]):
            if not rows:
                return
            names = list(rows[0])
            schema, _, bare = table.rpartition(".")
            statements: dict[int, str] = {}
            for start in range(0, len(rows), INSERT_BATCH):
                batch = rows[start:start + INSERT_BATCH]
                if len(batch) not in statements:
                    statements[len(batch)] = _insert_statement(schema or "canon_pg", bare, names, len(batch))
                db.execute(statements[len(batch)], [r[n] for r in batch for n in names])

        insert("pg_namespace", [
            {"oid": PG_CATALOG_OID, "nspname": "pg_catalog", "nspowner": OWNER_OID},
            {"oid": PUBLIC_OID, "nspname": "public", "nspowner": OWNER_OID},
            {"oid": INFO_SCHEMA_OID, "nspname": "information_schema", "nspowner": OWNER_OID},
        ])
        insert("pg_am", [{"oid": 2, "amname": "heap", "amhandler": "heap_tableam_handler", "amtype": "t"},
                         {"oid": 403, "amname": "btree", "amhandler": "bthandler", "amtype": "i"}])
        insert("pg_roles", [{"oid": OWNER_OID, "rolname": "canon", "rolsuper": False, "rolinherit": True,
                             "rolcreaterole": False, "rolcreatedb": False, "rolcanlogin": True,
                             "rolreplication": False, "rolconnlimit": -1, "rolbypassrls": False}])
        insert("pg_user", [{"usename": "canon", "usesysid": OWNER_OID, "usecreatedb": False, "usesuper": False,
                            "userepl": False, "usebypassrls": False}])
        insert("pg_tablespace", [{"oid": 1663, "spcname": "pg_default", "spcowner": OWNER_OID}])
        insert("pg_language", [{"oid": 12, "lanname": "internal", "lanowner": OWNER_OID, "lanispl": False,
                                "lanpltrusted": False},
                               {"oid": 14, "lanname": "sql", "lanowner": OWNER_OID, "lanispl": False,
                                "lanpltrusted": True}])
        insert("pg_settings", [{"name": k, "setting": v, "category": "Canon", "short_desc": "", "context": "user",
                                "vartype": "string", "source": "default", "boot_val": v, "reset_val": v,
                                "pending_restart": False} for k, v in SETTINGS.items()])
        procs, proc_oids = proc_rows(t.BUILTIN_TYPES, PG_CATALOG_OID, OWNER_OID, first_oid=12000)
        insert("pg_proc", procs)
        insert("pg_database", [{"oid": DATABASE_OID, "datname": "canon", "datdba": OWNER_OID, "encoding": 6,
                                "datlocprovider": "c", "datistemplate": False, "datallowconn": True,
                                "datconnlimit": -1, "datlastsysoid": 0, "datfrozenxid": 0, "datminmxid": 1,
                                "dattablespace": 1663, "datcollate": "C", "datctype": "C"}])
        type_rows = []
        for name, oid, size, category, array, element in t.BUILTIN_TYPES:
            type_rows.append({
                "oid": oid, "typname": name, "typnamespace": PG_CATALOG_OID, "typowner": OWNER_OID, "typlen": size,
                "typbyval": size in (1, 2, 4, 8), "typtype": "p" if category == "P" else "b", "typcategory": category,
                "typispreferred": name in ("text", "float8", "bool", "timestamptz", "oid"), "typisdefined": True,
                "typdelim": ",", "typrelid": 0, "typelem": element, "typarray": array,
                **type_function_oids(name, category, proc_oids),
                "typalign": "d" if size == 8 else "i", "typstorage": "p" if size > 0 else "x", "typnotnull": False,
                "typbasetype": 0, "typtypmod": -1, "typndims": 0, "typcollation": 100 if category == "S" else 0})
        class_rows, attr_rows, desc_rows, info_tables, info_columns = [], [], [], [], []
        for name, view in self.views.items():
            oid = self.table_oids[name]
            class_rows.append({
                "oid": oid, "relname": name, "relnamespace": PUBLIC_OID, "reltype": oid + 1, "reloftype": 0,
                "relowner": OWNER_OID, "relam": 2, "relfilenode": oid, "reltablespace": 0, "relpages": 0,
                "reltuples": -1.0, "relallvisible": 0, "reltoastrelid": 0, "relhasindex": False, "relisshared": False,
                "relpersistence": "p", "relkind": "r", "relnatts": len(view.columns), "relchecks": 0,
                "relhasoids": False, "relhasrules": False, "relhastriggers": False, "relhassubclass": False,
                "relrowsecurity": False, "relforcerowsecurity": False, "relispopulated": True, "relreplident": "d",
                "relispartition": False, "relrewrite": 0, "relfrozenxid": 0, "relminmxid": 0})
            type_rows.append({**type_rows[0], "oid": oid + 1, "typname": name, "typnamespace": PUBLIC_OID,
                              "typlen": -1, "typbyval": False, "typtype": "c", "typcategory": "C",
                              "typispreferred": False, "typrelid": oid, "typelem": 0, "typarray": 0,
                              **type_function_oids("record", "P", proc_oids), "typcollation": 0})
            if view.description:
                desc_rows.append({"objoid": oid, "classoid": 1259, "objsubid": 0, "description": view.description})
            info_tables.append({"table_catalog": "canon", "table_schema": "public", "table_name": name,
                                "table_type": "BASE TABLE", "is_insertable_into": "NO", "is_typed": "NO"})
            for number, column in enumerate(view.columns, start=1):
                attr_rows.append({
                    "attrelid": oid, "attname": column.name, "atttypid": column.oid, "attstattarget": -1,
                    "attlen": t.TYPE_SIZES.get(column.oid, -1), "attnum": number, "attndims": 0, "attcacheoff": -1,
                    "atttypmod": -1, "attbyval": t.TYPE_SIZES.get(column.oid, -1) in (1, 2, 4, 8),
                    "attstorage": "x", "attalign": "i", "attnotnull": False, "atthasdef": False,
                    "atthasmissing": False, "attidentity": "", "attgenerated": "", "attisdropped": False,
                    "attislocal": True, "attinhcount": 0, "attcollation": 100 if column.oid == t.TEXT else 0,
                    "attcompression": ""})
                if column.description:
                    desc_rows.append({"objoid": oid, "classoid": 1259, "objsubid": number,
                                      "description": column.description})
                info_columns.append({
                    "table_catalog": "canon", "table_schema": "public", "table_name": name,
                    "column_name": column.name, "ordinal_position": number, "is_nullable": "YES",
                    "data_type": t.FORMAT_NAMES.get(column.oid, "text"), "udt_catalog": "canon",
                    "udt_schema": "pg_catalog", "udt_name": t.TYPE_NAMES.get(column.oid, "text"),
                    "numeric_precision_radix": 10 if column.oid == t.NUMERIC else None,
                    "is_identity": "NO", "is_generated": "NEVER", "is_updatable": "NO",
                    "dtd_identifier": str(number)})
        insert("pg_type", type_rows)
        insert("pg_class", class_rows)
        insert("pg_attribute", attr_rows)
        insert("pg_description", desc_rows)
        insert("pg_stat_user_tables", [{"relid": self.table_oids[n], "schemaname": "public", "relname": n,
                                         "seq_scan": 0, "idx_scan": 0, "n_live_tup": 0, "n_dead_tup": 0}
                                        for n in self.views])
        insert("pg_tables", [{"schemaname": "public", "tablename": n, "tableowner": "canon", "hasindexes": False,
                              "hasrules": False, "hastriggers": False, "rowsecurity": False} for n in self.views])
        insert("canon_is.tables", info_tables)
        insert("canon_is.columns", info_columns)
        insert("canon_is.schemata", [{"catalog_name": "canon", "schema_name": s, "schema_owner": "canon"}
                                     for s in ("pg_catalog", "public", "information_schema")])

    def set_databases(self, names: set[str]) -> None:
        pass

    # --- queries ---------------------------------------------------------------------------------------

    def run(self, tree: exp.Expression, session: dict) -> tuple[list[tuple[str, int]], list[tuple]]:
        """A client's catalog query (a parsed sqlglot tree), answered from the metadata tables."""
        rewritten = self.rewrite(tree, session)
        check_catalog_query(rewritten, tables=self._tables, functions=self._functions)
        try:
            sql = rewritten.sql(dialect="duckdb")
        except SqlglotError as error:
            raise PgError(FEATURE_NOT_SUPPORTED, f"cannot answer this catalog query: {error}") from None
        with self._lock:
            cursor = self._db.cursor()
        try:
            result = cursor.execute(sql)
            names = [d[0] for d in result.description]
            kinds = [d[1] for d in result.description]
            rows = result.fetchall()
        except duckdb.CatalogException as error:
            raise PgError(UNDEFINED_TABLE if "Table" in str(error) else UNDEFINED_FUNCTION,
                          _first_line(error), hint="Canon emulates the common pg_catalog and "
                          "information_schema tables; its own tables are: " + ", ".join(self.views)) from None
        except duckdb.ParserException as error:
            raise PgError(SYNTAX_ERROR, _first_line(error)) from None
        except duckdb.Error as error:
            raise PgError(FEATURE_NOT_SUPPORTED, f"cannot answer this catalog query: {_first_line(error)}") from None
        finally:
            cursor.close()
        columns = [(name, t.duckdb_oid(kind)) for name, kind in zip(names, kinds)]
        return _rename_columns(tree, columns), rows

    def rewrite(self, tree: exp.Expression, session: dict) -> exp.Expression:
        settings = session.get("settings", {})
        tree = tree.copy().transform(lambda n: n.this if isinstance(n, exp.Collate) else n)

        cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}

        def swap(node):
            if isinstance(node, exp.Table) and node.name.lower() == "pg_database" \
                    and node.db.lower() in ("", "pg_catalog") and not isinstance(node.this, exp.Func):
                # one database, named as the client connected (current_database())
                body = exp.Select(expressions=[exp.Star(replace=[exp.alias_(
                    exp.Literal.string(session.get("database", "canon")), "datname")])]).from_(
                    exp.table_("pg_database", db="canon_pg"))
                return exp.Subquery(this=body, alias=exp.TableAlias(this=exp.to_identifier(node.alias_or_name)))
            if isinstance(node, exp.Table) and not node.db and node.name.lower() in cte_names:
                return node  # WITH x AS (...) SELECT ... FROM x
            if isinstance(node, exp.Table):
                return self._table(node)
            if isinstance(node, exp.Format):
                return pg_format(node)
            if isinstance(node, exp.Any):
                return any_array_literal(node)  # = ANY('{r,p}') (array_literals.py)
            if isinstance(node, (exp.EQ, exp.NEQ)):
                node = regtype_comparison(regproc_comparison(node))
            if isinstance(node, exp.Column) and node.args.get("db") is not None \
                    and node.db.lower() in ("pg_catalog", "information_schema"):
                new = node.copy()
                new.set("db", None)
                new.set("catalog", None)
                return new
            if isinstance(node, exp.Dot) and isinstance(node.this, (exp.Identifier, exp.Var, exp.Column)) \
                    and node.this.name.lower() in ("pg_catalog", "information_schema") \
                    and not isinstance(node.expression, exp.Identifier):
                return node.expression
            if isinstance(node, exp.Operator):
                op = str(node.args.get("operator") or "").split(".")[-1].strip()
                this, other = node.this, node.expression
                mapping = {"~": exp.RegexpLike, "~*": exp.RegexpILike, "=": exp.EQ, "<>": exp.NEQ}
                if op == "!~":
                    return exp.Not(this=exp.RegexpLike(this=this, expression=other))
                if op in mapping:
                    return mapping[op](this=this, expression=other)
                raise PgError(FEATURE_NOT_SUPPORTED, f"operator {op} is not supported in catalog queries")
            if isinstance(node, exp.Collate):
                return node.this
            if isinstance(node, exp.Cast):
                return _cast(node)
            if isinstance(node, exp.Div) and all(isinstance(side, exp.Literal) and side.is_int
                                                 for side in (node.this, node.expression)):
                return exp.IntDiv(this=node.this, expression=node.expression)  # PostgreSQL: int / int is an int
            if isinstance(node, (exp.CurrentUser, exp.SessionUser)) or (isinstance(node, exp.Column) and not node.table
                                                         and node.name.lower() in ("current_user", "session_user", "user")
                                                         and not node.this.quoted):
                return exp.Literal.string(session.get("user", "canon"))
            if isinstance(node, exp.CurrentSchema) if hasattr(exp, "CurrentSchema") else False:
                return exp.Literal.string("public")
            if isinstance(node, (exp.Anonymous, exp.Func)):
                name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
                if name in ("json_build_object", "jsonb_build_object"):
                    return exp.func("json_object", *node.expressions)
                if name == "current_database" or name == "current_catalog":
                    return exp.Literal.string(session.get("database", "canon"))
                if name == "current_schema":
                    return exp.Literal.string("public")
                if name == "current_schemas":
                    return exp.Array(expressions=[exp.Literal.string("pg_catalog"), exp.Literal.string("public")])
                if name in ("version", "current_version"):
                    return exp.Literal.string(VERSION_TEXT)
                if name == "inet_server_port" and session.get("port"):
                    return exp.Literal.number(session["port"])
                if name == "pg_backend_pid":
                    return exp.Literal.number(session.get("pid", 0))
                if name in ("current_setting",) and node.expressions:
                    key = node.expressions[0]
                    while isinstance(key, exp.Cast):
                        key = key.this
                    if isinstance(key, exp.Literal):
                        value = settings.get(key.name.lower(), SETTINGS.get(key.name.lower()))
                        return exp.Literal.string(value) if value is not None else exp.Null()
            return node

        return _bottom_up(tree, swap)

    def _table(self, node: exp.Table) -> exp.Expression:
        schema = node.db.lower()
        name = node.name.lower()
        if isinstance(node.this, exp.Func):
            names = {type(node.this).__name__.lower(), node.this.sql_name().lower()}
            if isinstance(node.this, exp.Anonymous):
                names.add(node.this.name.lower())
            if names & {"generate_series", "unnest", "explodinggenerateseries", "exploding_generate_series",
                        "explode"}:
                new = node.copy()
                new.set("db", None)
                new.set("catalog", None)
                return new
        if schema == "information_schema":
            if name not in _INFO_TABLES:
                raise PgError(UNDEFINED_TABLE, f'relation "information_schema.{name}" does not exist',
                              hint="emulated: " + ", ".join(sorted(_INFO_TABLES)))
            return _retarget(node, "canon_is")
        if schema in ("pg_catalog", "") and (name in _TABLES or name.startswith("pg_")):
            if name not in _TABLES:
                if name.startswith("pg_stat") or name.startswith("pg_shadow"):
                    raise PgError(UNDEFINED_TABLE, f'relation "pg_catalog.{name}" does not exist')
                raise PgError(UNDEFINED_TABLE, f'relation "pg_catalog.{name}" is not emulated by Canon',
                              hint="emulated: " + ", ".join(sorted(_TABLES)))
            return _retarget(node, "canon_pg")
        if isinstance(node.this, exp.Func) and not node.db:
            # a scalar function in FROM is one row with one column named after its alias, as in
            # PostgreSQL (Grafana: FROM ..., string_to_array(current_setting('search_path'), ',') s)
            alias = node.alias_or_name or "f"
            return exp.Subquery(this=exp.select(exp.alias_(node.this.copy(), alias, quoted=True)),
                                alias=exp.TableAlias(this=exp.to_identifier(alias)))
        if not node.name or isinstance(node.this, exp.Func):
            what = f"table function {function_name(node.this)}()" if isinstance(node.this, exp.Func) else "this table"
            raise PgError(FEATURE_NOT_SUPPORTED, f"{what} is not available in catalog queries",
                          hint="Canon's tables are its views: " + ", ".join(self.views))
        raise PgError(UNDEFINED_TABLE, f'relation "{node.sql("postgres")}" does not exist',
                      hint="Canon's tables are its views: " + ", ".join(self.views))


def _bottom_up(tree: exp.Expression, swap) -> exp.Expression:
    """Apply `swap` to every node, children before parents (nested casts, calls in calls)."""
    for node in reversed(list(tree.walk(bfs=False))):
        new = swap(node)
        if new is not node:
            if node is tree:
                tree = new
            else:
                node.replace(new)
    return tree


def _retarget(node: exp.Table, schema: str) -> exp.Table:
    new = node.copy()
    new.set("db", exp.to_identifier(schema))
    new.set("catalog", None)
    if not new.alias:
        new.set("alias", exp.TableAlias(this=exp.to_identifier(node.name)))
    return new


def _cast(node: exp.Cast) -> exp.Expression:
    target = node.to
    type_name = target.sql("postgres").lower().replace("pg_catalog.", "") if target is not None else ""
    value = node.this
    if type_name in ("regclass",):
        if isinstance(value, exp.Literal) and value.is_string or isinstance(value, (exp.Paren, exp.DPipe)):
            # a name: a literal, or text built by format('%I.%I', ...) / ||
            return exp.func("canon_regclass", value)
        return exp.func("canon_relname", value)
    if type_name in ("regtype",):
        if isinstance(value, exp.Literal) and value.is_string:
            return exp.func("canon_regtype", value)
        return exp.func("canon_typname", value)
    if type_name in ("regproc", "regprocedure"):  # pg_type.typreceive & co. hold pg_proc oids
        if isinstance(value, exp.Literal) and value.is_string:
            return exp.func("canon_procoid", value)
        return exp.func("canon_procname", value)
    if type_name in ("regnamespace", "regrole", "name", "char", '"char"', "pg_node_tree",
                     "text"):
        return exp.cast(value, exp.DataType.Type.VARCHAR)
    if type_name in ("oid", "xid", "regoper"):
        return exp.cast(value, exp.DataType.Type.BIGINT)
    if type_name == "regtype[]":
        return regtype_array(value)
    if type_name.endswith("[]") and ("oid" in type_name or "regtype" in type_name):
        return exp.cast(value, exp.DataType.build("BIGINT[]"))
    if target is not None and any(d.this == exp.DataType.Type.USERDEFINED for d in target.find_all(exp.DataType)):
        try:
            return exp.cast(value, exp.DataType.build(type_name, dialect="postgres"))
        except Exception:  # noqa: BLE001 - an unknown type name: read it as text
            return exp.cast(value, exp.DataType.Type.VARCHAR)
    return node


def _rename_columns(tree: exp.Expression, columns: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """PostgreSQL names an unaliased function column after the function (version(), current_schema())."""
    if not isinstance(tree, exp.Select) or len(tree.expressions) != len(columns):
        return columns
    out = []
    for projection, (name, oid) in zip(tree.expressions, columns):
        if isinstance(projection, exp.Dot) and isinstance(projection.expression, exp.Func):
            projection = projection.expression
        if isinstance(projection, exp.Alias) or isinstance(projection, exp.Column):
            out.append((projection.alias_or_name, oid))
        elif isinstance(projection, exp.Anonymous):
            out.append((projection.name.lower(), oid))
        elif isinstance(projection, exp.Func):
            fname = projection.sql_name().lower()
            out.append(("version" if fname == "current_version" else fname, oid))
        elif isinstance(projection, exp.Cast):
            out.append((projection.to.sql("postgres").lower(), oid))
        elif isinstance(projection, (exp.Literal, exp.Boolean, exp.Null)) or projection.key in ("eq",):
            out.append(("?column?", oid))
        else:
            out.append((name, oid))
    return out


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:300]
