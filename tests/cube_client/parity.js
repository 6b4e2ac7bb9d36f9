// Exercises the public methods of Cube's own client (@cubejs-client/core: CubeApi, ResultSet, Meta,
// SqlQuery) against a running Canon server, unchanged.
// usage: node parity.js <apiUrl> [continue-wait]
// prints one JSON document: {calls: [{name, ok, error}], values: {...}} — the Python test checks the
// values against POST /v1/query and counts the calls that passed.
const cubeModule = require('@cubejs-client/core');

const cube = cubeModule.default || cubeModule;

const calls = [];
const values = {};

async function check(name, fn) {
  try {
    values[name] = await fn();
    calls.push({ name, ok: true });
  } catch (error) {
    calls.push({ name, ok: false, error: String(error && error.message ? error.message : error), status: error && error.status });
  }
}

const byCategory = {
  measures: ['sales.revenue', 'sales.order_count'], dimensions: ['sales.product_category'],
  order: { 'sales.product_category': 'asc' },
};
const byMonth = {
  measures: ['metrics.revenue'], dimensions: ['product.category'],
  timeDimensions: [{ dimension: 'metrics.metric_time', granularity: 'month', dateRange: ['2025-01-01', '2025-03-31'] }],
  order: { 'metrics.metric_time.month': 'asc', 'product.category': 'asc' },
};

async function main() {
  const [apiUrl, mode] = process.argv.slice(2);
  const api = cube('canon-test-token', { apiUrl });

  if (mode === 'continue-wait') {
    // a deliberately slow query: the server answers "Continue wait" until its time cap, then 504
    let progress = 0;
    await check('load.continueWait', async () => {
      try {
        await api.load({ measures: ['metrics.slow_checksum'] }, { progressCallback: () => { progress += 1; } });
        return { progress, status: 200 };
      } catch (error) {
        return { progress, status: error.status, error: error.message };
      }
    });
    process.stdout.write(JSON.stringify({ calls, values }));
    return;
  }

  await check('meta', async () => {
    const meta = await api.meta();
    const grouped = meta.membersGroupedByCube();
    return {
      cubes: meta.cubes.length,
      measures: grouped.measures.flatMap((g) => g.members.map((m) => m.name)).length,
      resolved: meta.resolveMember('sales.revenue', 'measures').title,
      operators: meta.filterOperatorsForMember('sales.product_category', 'dimensions').map((o) => o.name),
      forQuery: meta.membersForQuery(byCategory, 'measures').length,
      defaultTime: meta.defaultTimeDimensionNameFor('metrics.revenue'),
    };
  });
  await check('meta.onlyViews', async () => (await api.meta({ onlyViews: true })).cubes.map((c) => c.type));

  let monthly = null;
  await check('load', async () => {
    monthly = await api.load(byMonth);
    return monthly.rawData();
  });
  await check('resultSet.pivots', async () => ({
    chartPivot: monthly.chartPivot(),
    tablePivot: monthly.tablePivot(),
    pivot: monthly.pivot().length,
    series: monthly.series().length,
    seriesNames: monthly.seriesNames().map((s) => s.key),
    categories: monthly.categories().length,
    tableColumns: monthly.tableColumns().map((c) => c.key),
    totalRow: monthly.totalRow(),
    query: monthly.query().measures,
    pivotQuery: monthly.pivotQuery().queryType,
    annotation: Object.keys(monthly.annotation().measures),
    decompose: monthly.decompose().length,
    serialize: Boolean(cube.ResultSet ? cube.ResultSet.deserialize(monthly.serialize()) : monthly.serialize()),
  }));
  await check('resultSet.drillDown', async () => {
    const x = monthly.chartPivot()[0].x;
    const query = monthly.drillDown({ xValues: [x], yValues: [monthly.seriesNames()[0].yValues[0], 'metrics.revenue'] });
    if (!query) throw new Error('drillDown returned null');
    const drilled = await api.load(query);
    return { query, rows: drilled.rawData() };
  });
  await check('load.columnar', async () => (await api.load(byCategory, {}, undefined, 'columnar')).rawData());
  await check('load.compact', async () => (await api.load(byCategory, {}, undefined, 'compact')).rawData());
  await check('load.default', async () => (await api.load(byCategory)).rawData());
  await check('load.castNumerics', async () => (await api.load(byCategory, { castNumerics: true })).rawData());
  await check('load.total', async () => (await api.load({ ...byCategory, limit: 2, total: true })).totalRows());
  await check('load.filters', async () => (await api.load({
    measures: ['metrics.revenue'],
    filters: [
      { member: 'customer.segment', operator: 'in', values: ['enterprise', 'consumer'] },
      { member: 'order.campaign_id', operator: 'notEquals', values: [null] },
      { member: 'order.ordered_at', operator: 'beforeDate', values: ['last month'] },
      { member: 'metrics.revenue', operator: 'gt', values: ['1'] },
    ],
  })).rawData());
  await check('load.compareDateRange', async () => {
    const rs = await api.load({
      measures: ['metrics.revenue'],
      timeDimensions: [{ dimension: 'metrics.metric_time', granularity: 'month',
        compareDateRange: [['2025-01-01', '2025-02-28'], ['2024-01-01', '2024-02-29']] }],
    });
    return { decompose: rs.decompose().map((r) => r.rawData()), chart: rs.chartPivot(), series: rs.seriesNames().map((s) => s.key) };
  });
  await check('load.blending', async () => {
    const td = [{ dimension: 'metrics.metric_time', granularity: 'month', dateRange: ['2025-01-01', '2025-03-31'] }];
    const rs = await api.load([{ measures: ['metrics.revenue'], timeDimensions: td }, { measures: ['metrics.ad_spend'], timeDimensions: td }]);
    return { chart: rs.chartPivot(), series: rs.seriesNames().map((s) => s.key) };
  });
  await check('load.relativeRanges', async () => {
    const ranges = ['from 7 days ago to now', 'last 6 hours', 'last 2 weeks'];
    const out = [];
    for (const dateRange of ranges) {
      const rs = await api.load({ measures: ['metrics.order_count'], timeDimensions: [{ dimension: 'metrics.metric_time', dateRange }] });
      out.push(rs.loadResponse.results[0].query.timeDimensions[0].dateRange);
    }
    return out;
  });
  await check('sql', async () => {
    const sql = await api.sql(byCategory);
    return { sql: sql.sql(), raw: Object.keys(sql.rawQuery()) };
  });
  await check('dryRun', async () => api.dryRun(byMonth));
  await check('subscribe', async () => new Promise((resolve, reject) => {
    const subscription = api.subscribe(byCategory, {}, async (error, resultSet) => {
      await subscription.unsubscribe();
      if (error) reject(error); else resolve(resultSet.rawData().length);
    });
  }));
  await check('errors.unknownMember', async () => {
    try {
      await api.load({ measures: ['sales.nonexistent'] });
      throw new Error('no error');
    } catch (error) {
      if (!error.status) throw error;
      return { status: error.status, message: error.message };
    }
  });
  process.stdout.write(JSON.stringify({ calls, values }));
}

main().catch((error) => {
  process.stderr.write(`cube client failed: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
