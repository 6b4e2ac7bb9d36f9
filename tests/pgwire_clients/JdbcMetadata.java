// Runs with `java -cp /usr/share/java/postgresql.jar JdbcMetadata.java <port> <user> <password>`: what
// Metabase, DBeaver and other JDBC tools ask DatabaseMetaData for, and date/timestamp/array parameters.
// Prints one tab-separated line per answer; a failing call prints "fail\t<call>\t<SQLSTATE>\t<message>".
import java.sql.*;

public class JdbcMetadata {
    interface Call { void run() throws SQLException; }

    static void attempt(String name, Call call) {
        try {
            call.run();
        } catch (SQLException e) {
            System.out.println("fail\t" + name + "\t" + e.getSQLState() + "\t" + e.getMessage().replace('\n', ' '));
        }
    }

    static int count(ResultSet rs) throws SQLException {
        int n = 0;
        while (rs.next()) n++;
        rs.close();
        return n;
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/canon?prepareThreshold=1";
        try (Connection conn = DriverManager.getConnection(url, args[1], args[2])) {
            DatabaseMetaData meta = conn.getMetaData();
            attempt("getTables", () -> System.out.println("tables\t" + count(meta.getTables(null, "public", "%", new String[] {"TABLE"}))));
            attempt("getColumns", () -> System.out.println("columns\t" + count(meta.getColumns(null, "public", "sales", "%"))));
            attempt("getPrimaryKeys", () -> System.out.println("primary_keys\t" + count(meta.getPrimaryKeys(null, "public", "sales"))));
            attempt("getImportedKeys", () -> System.out.println("imported_keys\t" + count(meta.getImportedKeys(null, "public", "sales"))));
            attempt("getExportedKeys", () -> System.out.println("exported_keys\t" + count(meta.getExportedKeys(null, "public", "sales"))));
            attempt("getIndexInfo", () -> System.out.println("index_info\t" + count(meta.getIndexInfo(null, "public", "sales", false, true))));
            attempt("getTypeInfo", () -> System.out.println("type_info\t" + count(meta.getTypeInfo())));
            attempt("getSchemas", () -> System.out.println("schemas\t" + count(meta.getSchemas())));
            attempt("getCatalogs", () -> System.out.println("catalogs\t" + count(meta.getCatalogs())));
            String sql = "SELECT SUM(revenue) FROM sales WHERE metric_time >= ?";
            attempt("setDate", () -> {
                try (PreparedStatement ps = conn.prepareStatement(sql)) {
                    ps.setDate(1, Date.valueOf("2025-01-01"));
                    try (ResultSet rs = ps.executeQuery()) { rs.next(); System.out.println("date\t" + rs.getBigDecimal(1).toPlainString()); }
                }
            });
            attempt("setTimestamp", () -> {
                try (PreparedStatement ps = conn.prepareStatement(sql)) {
                    ps.setTimestamp(1, Timestamp.valueOf("2025-01-01 00:00:00"));
                    try (ResultSet rs = ps.executeQuery()) { rs.next(); System.out.println("timestamp\t" + rs.getBigDecimal(1).toPlainString()); }
                }
            });
            attempt("setArray", () -> {
                String in = "SELECT SUM(revenue) FROM sales WHERE order_sales_channel = ANY(?)";
                try (PreparedStatement ps = conn.prepareStatement(in)) {
                    ps.setArray(1, conn.createArrayOf("text", new String[] {"web", "store"}));
                    try (ResultSet rs = ps.executeQuery()) { rs.next(); System.out.println("array\t" + rs.getBigDecimal(1).toPlainString()); }
                }
            });
        }
    }
}
