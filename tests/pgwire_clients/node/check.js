// node-postgres (pg) and postgres.js against Canon: `node check.js <port> <user> <password>`.
// Prints one JSON object: each query's rows (numbers as numbers) and each expected error's SQLSTATE.
// Every query runs under a timeout: a server that holds an error until Sync would hang postgres.js.
const pg = require("pg");
const postgres = require("postgres");

const [port, user, password] = process.argv.slice(2);
const TIMEOUT_MS = 10000;

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const num = (rows) => rows.map((r) => Object.values(r).map((v) => (v !== null && !isNaN(Number(v)) && typeof v !== "boolean" && !(v instanceof Date) ? Number(v) : v instanceof Date ? v.toISOString().slice(0, 10) : v)));

async function nodePostgres(out) {
  const client = new pg.Client({ host: "127.0.0.1", port: Number(port), user, password, database: "canon" });
  await client.connect();
  try {
    const q = (text, values) => withTimeout(client.query(text, values), text).then((r) => num(r.rows));
    out.pg_text = await q("SELECT order_sales_channel, SUM(revenue) FROM sales WHERE order_sales_channel = $1 GROUP BY 1", ["web"]);
    out.pg_in = await q("SELECT SUM(revenue) FROM sales WHERE order_sales_channel IN ($1,$2)", ["web", "store"]);
    out.pg_any = await q("SELECT SUM(revenue) FROM sales WHERE order_sales_channel = ANY($1)", [["web", "store"]]);
    out.pg_date = await q("SELECT SUM(revenue) FROM sales WHERE metric_time >= $1", [new Date(Date.UTC(2025, 0, 1))]);
    out.pg_number = await q("SELECT product_category, SUM(revenue) FROM sales GROUP BY 1 HAVING SUM(revenue) > $1 ORDER BY 1", [1000]);
    out.pg_limit = await q("SELECT product_category FROM sales GROUP BY 1 ORDER BY 1 LIMIT $1", [2]);
    try {
      await withTimeout(client.query("SELECT nope FROM sales WHERE order_sales_channel = $1", ["web"]), "pg error");
      out.pg_error = "no error";
    } catch (e) {
      out.pg_error = e.code || String(e.message);
    }
    out.pg_after = await q("SELECT SUM(revenue) FROM sales WHERE order_sales_channel = $1", ["store"]);
  } finally {
    await client.end();
  }
}

async function postgresJs(out) {
  const sql = postgres({ host: "127.0.0.1", port: Number(port), user, password, database: "canon",
                         max: 1, connect_timeout: 10, idle_timeout: 1 });
  try {
    const q = (p, what) => withTimeout(p, what).then((rows) => num(Array.from(rows)));
    out.js_text = await q(sql`SELECT order_sales_channel, SUM(revenue) FROM sales WHERE order_sales_channel = ${"web"} GROUP BY 1`, "text");
    out.js_in = await q(sql`SELECT SUM(revenue) FROM sales WHERE order_sales_channel IN ${sql(["web", "store"])}`, "in");
    out.js_date = await q(sql`SELECT SUM(revenue) FROM sales WHERE metric_time >= ${new Date(Date.UTC(2025, 0, 1))}`, "date");
    out.js_number = await q(sql`SELECT product_category, SUM(revenue) FROM sales GROUP BY 1 HAVING SUM(revenue) > ${1000} ORDER BY 1`, "number");
    try {
      await withTimeout(sql`SELECT nope FROM sales WHERE order_sales_channel = ${"web"}`, "js error");
      out.js_error = "no error";
    } catch (e) {
      out.js_error = e.code || String(e.message);
    }
    out.js_after = await q(sql`SELECT SUM(revenue) FROM sales WHERE order_sales_channel = ${"store"}`, "after");
  } finally {
    await sql.end({ timeout: 1 });
  }
}

(async () => {
  const out = {};
  await nodePostgres(out);
  await postgresJs(out);
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
