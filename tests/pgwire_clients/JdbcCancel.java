// Runs with `java -cp /usr/share/java/postgresql.jar JdbcCancel.java <port> <user> <password> <sql>`:
// starts the (endless) query, calls Statement.cancel() from another thread after 0.5 s, and prints
// tab-separated lines: the SQLState the driver reports, how long the statement took after the cancel,
// and a cheap query's answer on the same connection afterwards (the connection stays usable).
import java.sql.*;

public class JdbcCancel {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/canon";
        try (Connection conn = DriverManager.getConnection(url, args[1], args[2]);
             Statement st = conn.createStatement()) {
            long[] cancelledAt = {0};
            Thread canceller = new Thread(() -> {
                try {
                    Thread.sleep(500);
                    cancelledAt[0] = System.nanoTime();
                    st.cancel();
                } catch (Exception e) {
                    System.out.println("cancel-failed\t" + e);
                }
            });
            canceller.start();
            try (ResultSet rs = st.executeQuery(args[3])) {
                System.out.println("finished\t" + (rs.next() ? rs.getString(1) : ""));
            } catch (SQLException e) {
                long after = System.nanoTime();
                System.out.println("sqlstate\t" + e.getSQLState());
                System.out.println("cancel_ms\t" + (cancelledAt[0] == 0 ? -1 : (after - cancelledAt[0]) / 1_000_000));
            }
            canceller.join();
            try (ResultSet rs = st.executeQuery("SELECT MEASURE(order_count) FROM sales")) {
                rs.next();
                System.out.println("after\t" + rs.getLong(1));
            }
        }
    }
}
