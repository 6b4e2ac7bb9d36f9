// Talks to a running Canon server through Cube's own client library, unchanged.
// usage: node client.js <apiUrl> '<JSON list of Cube queries>'
// prints one JSON document: what meta() discovered and what load()/sql() returned.
const cubeModule = require('@cubejs-client/core');

const cube = cubeModule.default || cubeModule;

async function main() {
  const [apiUrl, queriesJson] = process.argv.slice(2);
  const queries = JSON.parse(queriesJson || '[]');
  const api = cube('canon-test-token', { apiUrl });

  const meta = await api.meta();
  const members = meta.membersGroupedByCube();
  const out = {
    meta: {
      cubes: meta.cubes.map((c) => ({ name: c.name, type: c.type, measures: c.measures.length, dimensions: c.dimensions.length })),
      measures: members.measures.flatMap((g) => g.members.map((m) => m.name)),
      dimensions: members.dimensions.flatMap((g) => g.members.map((m) => m.name)),
      timeDimensions: members.timeDimensions.flatMap((g) => g.members.map((m) => m.name)),
      revenue: meta.resolveMember('sales.revenue', 'measures'),
      categoryOperators: meta.filterOperatorsForMember('sales.product_category', 'dimensions').map((o) => o.name),
    },
    results: [],
  };

  for (const query of queries) {
    try {
      const resultSet = await api.load(query);
      const sql = await api.sql(query);
      out.results.push({
        rawData: resultSet.rawData(),
        tablePivot: resultSet.tablePivot(),
        chartPivot: query.timeDimensions && query.timeDimensions.some((td) => td.granularity) ? resultSet.chartPivot() : null,
        seriesNames: resultSet.seriesNames().map((s) => s.key),
        annotation: resultSet.annotation(),
        totalRow: resultSet.totalRow(),
        sql: sql.sql(),
      });
    } catch (error) {
      out.results.push({ error: error.message, status: error.status || null });
    }
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((error) => {
  process.stderr.write(`cube client failed: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
