// A minimal public OAuth2 client, as a single-page app writes one: no secret, PKCE S256
// with WebCrypto, the code back on this same page, exchanged by fetch (CORS).
// Open as spa.html?api=<gateway origin>&client_id=<public client>.
const opened = new URLSearchParams(location.search);
if (opened.has("api")) {
  sessionStorage.setItem("api", opened.get("api"));
  sessionStorage.setItem("client_id", opened.get("client_id"));
}
const api = sessionStorage.getItem("api");
const clientId = sessionStorage.getItem("client_id");
const redirectUri = location.origin + location.pathname;
const result = document.getElementById("result");

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function signIn() {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem("verifier", verifier);
  sessionStorage.setItem("state", state);
  location.assign(`${api}/oauth/authorize?` + new URLSearchParams({
    response_type: "code", client_id: clientId, redirect_uri: redirectUri, scope: "orders:read",
    state, code_challenge: challenge, code_challenge_method: "S256",
  }));
}

async function finish(params) {
  history.replaceState(null, "", location.pathname);  // the code leaves the address bar
  const stateMatches = params.get("state") === sessionStorage.getItem("state");
  const reply = await fetch(`${api}/oauth/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", code: params.get("code"), client_id: clientId,
      redirect_uri: redirectUri, code_verifier: sessionStorage.getItem("verifier"),
    }),
  });
  const token = await reply.json();
  const orders = await fetch(`${api}/api/v1/orders`, {
    headers: { Authorization: `Bearer ${token.access_token}` },
  });
  const body = await orders.json();
  return {
    stateMatches, tokenStatus: reply.status, tokenType: token.token_type,
    ordersStatus: orders.status, orderCount: body.data ? body.data.length : null,
  };
}

document.getElementById("sign-in").addEventListener("click", () => { signIn(); });
const back = new URLSearchParams(location.search);
if (back.has("code")) {
  finish(back).then((done) => {
    result.textContent = JSON.stringify(done);
    result.dataset.done = "true";
  });
}
