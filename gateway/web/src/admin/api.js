// The admin panel's side of the API: tokens in sessionStorage (this tab only), a request helper
// that refreshes an expired access token once, and the session ending when the server says so.

import { ApiError } from "../api.js";

const STORE_KEY = "aetherial.admin.tokens";

export const state = {
  tokens: loadTokens(),
};

/** What to do when the server ends the session (the shell shows the sign-in form again). */
let onSignedOut = () => {};

export function whenSignedOut(handler) {
  onSignedOut = handler;
}

// --- tokens and the API ----------------------------------------------------------------------

function loadTokens() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE_KEY)) || null;
  } catch {
    return null;
  }
}

export function saveTokens(tokens) {
  state.tokens = tokens;
  if (tokens) sessionStorage.setItem(STORE_KEY, JSON.stringify(tokens));
  else sessionStorage.removeItem(STORE_KEY);
}


export async function rawRequest(method, path, body, token) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network_error", "The server cannot be reached. Check your connection.");
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(
      response.status, error.code || "http_error", error.message || `HTTP ${response.status}`, error.details,
    );
  }
  return data;
}

async function refreshTokens() {
  if (!state.tokens || !state.tokens.refresh_token) return false;
  try {
    const fresh = await rawRequest("POST", "/api/v1/auth/refresh", {
      refresh_token: state.tokens.refresh_token,
    });
    saveTokens({ ...state.tokens, ...fresh });
    return true;
  } catch {
    return false;
  }
}

export async function api(method, path, body) {
  try {
    return await rawRequest(method, path, body, state.tokens && state.tokens.access_token);
  } catch (error) {
    if (error.status === 401 && error.code === "token_expired" && (await refreshTokens())) {
      return rawRequest(method, path, body, state.tokens.access_token);
    }
    if (error.status === 401 || error.code === "account_suspended") {
      onSignedOut("Your session has ended. Sign in again.");
    } else if (error.code === "not_admin") {
      onSignedOut("This page is for administrators only.");
    }
    throw error;
  }
}
