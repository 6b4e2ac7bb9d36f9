// Cube's JavaScript client bundled for a browser page, as a web app ships it (tests/test_cube_browser.py).
// The page runs on another origin than Canon: every call is a CORS request with a preflight.
import cube from "@cubejs-client/core";

window.runCanonQuery = async (apiUrl, token, query) => {
  const api = cube(token, { apiUrl });
  try {
    const result = await api.load(query);
    const meta = await api.meta();
    document.body.setAttribute("data-result", JSON.stringify({ rows: result.tablePivot(), cubes: meta.cubes.length }));
  } catch (error) {
    document.body.setAttribute("data-error", String(error && error.message ? error.message : error));
  }
};
