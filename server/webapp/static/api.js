// The API client: same origin, JSON in and out, the server's own error messages shown as they are.
const TOKEN_KEY = "canon.token";

export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.code;
    this.hint = body.hint;
    this.location = body.location;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => value ? sessionStorage.setItem(TOKEN_KEY, value) : sessionStorage.removeItem(TOKEN_KEY),
};

export async function api(path, { method = "GET", body, params } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    for (const one of [].concat(value)) if (one !== null && one !== undefined && one !== "") url.searchParams.append(key, one);
  }
  const headers = { Accept: "application/json" };
  if (token.get()) headers.Authorization = `Bearer ${token.get()}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data || { message: `${method} ${url.pathname}: HTTP ${response.status}` });
  return data;
}

// Catalog listings change only on reload: fetched once per page load.
const cache = new Map();
export function cached(path, options) {
  const key = path + JSON.stringify(options || {});
  if (!cache.has(key)) cache.set(key, api(path, options).catch(e => { cache.delete(key); throw e; }));
  return cache.get(key);
}
