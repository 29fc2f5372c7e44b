// Signing in to /dashboard: OAuth 2.0 authorization code with PKCE (RFC 7636, S256)
// as the demo's public client "demo-dashboard" (no secret: a page cannot keep one).
//
//   1. startSignIn(): a random verifier and state go to sessionStorage, the browser
//      goes to /oauth/authorize with the verifier's SHA-256 (the challenge);
//   2. the person signs in on the gateway's own page, which sends the browser back
//      to /dashboard?code=...&state=...;
//   3. finishSignIn(): the state must match, then the code and the verifier buy the
//      tokens at /oauth/token. They live in sessionStorage: this tab only, gone
//      when it closes (a dashboard needs no more).
//
// The redirect URI is this page's own address, registered for the client
// (db/seed.py: under PUBLIC_URL, else this port on 127.0.0.1 and localhost).

export const CLIENT_ID = "demo-dashboard";
export const SCOPE = "customers:read orders:read stats:read";
const TOKENS = "dashboard.tokens";
const PENDING = "dashboard.pending-sign-in";

const redirectUri = () => window.location.origin + window.location.pathname;

function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const randomText = (size) => base64url(crypto.getRandomValues(new Uint8Array(size)));

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** Leave for the gateway's sign-in page. */
export async function startSignIn() {
  if (!window.crypto || !crypto.subtle) {
    // WebCrypto exists in secure contexts only: https, or http on loopback.
    throw new Error("Signing in needs https (or http on 127.0.0.1 / localhost).");
  }
  const verifier = randomText(32);
  const state = randomText(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
  const query = new URLSearchParams({
    response_type: "code",
    client_id: CLIENT_ID,
    redirect_uri: redirectUri(),
    scope: SCOPE,
    state,
    code_challenge: await challengeOf(verifier),
    code_challenge_method: "S256",
  });
  window.location.assign(`/oauth/authorize?${query}`);
}

async function tokenRequest(fields) {
  const reply = await fetch("/oauth/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ client_id: CLIENT_ID, ...fields }),
  });
  const body = await reply.json().catch(() => ({}));
  if (!reply.ok) {
    const message = body.error_description || body.error || `token endpoint answered ${reply.status}`;
    throw Object.assign(new Error(message), { answered: true });
  }
  const lifetime = 1000 * (body.expires_in || 0);
  sessionStorage.setItem(TOKENS, JSON.stringify({
    access: body.access_token,
    refresh: body.refresh_token || null,
    // Renewed ahead (freshToken): a quarter of its lifetime before it ends.
    renewAt: Date.now() + lifetime * 0.75,
  }));
  return body.access_token;
}

/**
 * Back from the sign-in page? Exchange the code (true), or say why not (throws).
 * False when this address carries no sign-in answer.
 */
export async function finishSignIn() {
  const params = new URLSearchParams(window.location.search);
  if (!params.has("code") && !params.has("error")) return false;
  // The code is single-use: take it out of the address (and of the history) at once.
  window.history.replaceState(null, "", window.location.pathname);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  if (params.has("error")) {
    throw new Error(params.get("error_description") || params.get("error"));
  }
  if (!pending || params.get("state") !== pending.state) {
    throw new Error("This sign-in answer is not for this tab (state mismatch): sign in again.");
  }
  await tokenRequest({
    grant_type: "authorization_code",
    code: params.get("code"),
    redirect_uri: redirectUri(),
    code_verifier: pending.verifier,
  });
  return true;
}

/** The access token, or null when signed out. */
export function accessToken() {
  const tokens = JSON.parse(sessionStorage.getItem(TOKENS) || "null");
  return tokens ? tokens.access : null;
}

/** The access token, renewed first when it is near its end (null when signed out). */
export async function freshToken() {
  const tokens = JSON.parse(sessionStorage.getItem(TOKENS) || "null");
  if (!tokens) return null;
  if (tokens.refresh && Date.now() >= tokens.renewAt) return await refreshAccess();
  return tokens.access;
}

/** A new access token from the refresh token (null when there is none or it failed). */
export async function refreshAccess() {
  const tokens = JSON.parse(sessionStorage.getItem(TOKENS) || "null");
  if (!tokens || !tokens.refresh) return null;
  try {
    return await tokenRequest({ grant_type: "refresh_token", refresh_token: tokens.refresh });
  } catch (error) {
    if (!error.answered) return tokens.access; // the network, not a refusal: try again later
    signOut(); // refused (expired, revoked): sign in again
    return null;
  }
}

export function signOut() {
  sessionStorage.removeItem(TOKENS);
}
