// REST client: the access token lives in memory only, the refresh token in localStorage (so a
// reload signs in again). A 401 `token_expired` refreshes once and retries; refreshing is shared
// by concurrent callers because refresh tokens are single use (a reused one revokes the session).

const REFRESH_KEY = "aetherial.refresh_token";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export class Api {
  constructor() {
    this.accessToken = null;
    this.expiresAt = 0;
    this.user = null;
    this.sessionId = null;
    this.refreshing = null;
    this.onSignedOut = () => {};
  }

  get refreshToken() {
    return localStorage.getItem(REFRESH_KEY);
  }

  setTokens(answer) {
    this.accessToken = answer.access_token;
    this.expiresAt = Date.now() + (answer.expires_in - 30) * 1000;
    this.sessionId = answer.session_id || this.sessionId;
    if (answer.user) this.user = answer.user;
    localStorage.setItem(REFRESH_KEY, answer.refresh_token);
  }

  clear() {
    this.accessToken = null;
    this.user = null;
    localStorage.removeItem(REFRESH_KEY);
  }

  async register(username, email, password) {
    await this.request("POST", "/api/v1/auth/register", { username, email, password }, { auth: false });
    return this.login(username, password);
  }

  async login(login, password) {
    const answer = await this.request("POST", "/api/v1/auth/login", { login, password }, { auth: false });
    this.setTokens(answer);
    return answer.user;
  }

  /** A fresh access token (refreshing when it is about to expire). */
  async token() {
    if (!this.accessToken || Date.now() >= this.expiresAt) await this.refresh();
    return this.accessToken;
  }

  refresh() {
    if (!this.refreshing) {
      this.refreshing = (async () => {
        const refreshToken = this.refreshToken;
        if (!refreshToken) throw new ApiError(401, "missing_token", "Please sign in.");
        try {
          const answer = await this.request("POST", "/api/v1/auth/refresh", { refresh_token: refreshToken }, { auth: false });
          this.setTokens(answer);
          if (!this.user) this.user = (await this.request("GET", "/api/v1/me")).user;
        } catch (error) {
          if (error.status === 401 || error.status === 403) {
            this.clear();
            this.onSignedOut(error.message);
          }
          throw error;
        }
      })().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async logout() {
    try {
      await this.request("POST", "/api/v1/auth/logout");
    } finally {
      this.clear();
    }
  }

  async request(method, path, body, { auth = true, retried = false } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth) headers.Authorization = `Bearer ${await this.token()}`;
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, "network_error", "Cannot reach the server. Check your connection.");
    }
    if (response.status === 204) return null;
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (response.ok) return payload;
    const error = payload?.error || {};
    if (auth && response.status === 401 && !retried && ["token_expired", "invalid_token"].includes(error.code)) {
      this.accessToken = null;
      return this.request(method, path, body, { auth, retried: true });
    }
    throw new ApiError(response.status, error.code || "http_error", error.message || `HTTP ${response.status}`, error.details);
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body = {}) {
    return this.request("POST", path, body);
  }
}

/** A human sentence for any error (API, ack or network). */
export function describeError(error) {
  if (!error) return "Something went wrong.";
  if (error.message) return error.message;
  return String(error.code || error);
}
