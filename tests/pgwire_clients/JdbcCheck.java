// Runs with `java -cp /usr/share/java/postgresql.jar JdbcCheck.java <port> <user> <password>`:
// prints the tables the driver's DatabaseMetaData sees and a prepared semantic query, tab-separated.
import java.sql.*;

public class JdbcCheck {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/canon";
        try (Connection conn = DriverManager.getConnection(url, args[1], args[2])) {
            DatabaseMetaData meta = conn.getMetaData();
            try (ResultSet tables = meta.getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (tables.next()) System.out.println("table\t" + tables.getString("TABLE_NAME"));
            }
            try (ResultSet columns = meta.getColumns(null, "public", "sales", "%")) {
                while (columns.next()) System.out.println("column\t" + columns.getString("COLUMN_NAME") + "\t" + columns.getString("TYPE_NAME"));
            }
            String sql = "SELECT customer_segment, MEASURE(revenue) FROM sales WHERE customer_segment <> ? GROUP BY 1 ORDER BY 1";
            for (int round = 0; round < 6; round++) {  // past prepareThreshold: server-side prepared statements
                try (PreparedStatement ps = conn.prepareStatement(sql)) {
                    ps.setString(1, "consumer");
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) if (round == 5) System.out.println("row\t" + rs.getString(1) + "\t" + rs.getBigDecimal(2).toPlainString());
                    }
                }
            }
            try (Statement st = conn.createStatement()) {
                st.executeQuery("SELECT nope FROM sales");
            } catch (SQLException e) {
                System.out.println("error\t" + e.getSQLState());
            }
            try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT MEASURE(order_count) FROM sales")) {
                rs.next();
                System.out.println("after\t" + rs.getLong(1));
            }
        }
    }
}
