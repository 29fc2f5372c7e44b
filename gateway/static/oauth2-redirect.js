// Where the authorization server sends the browser back after sign-in from Swagger
// UI's "Authorize" (/docs opened this window). It hands the code, or the error, to
// the opener's Swagger UI, which checks the state and exchanges the code (PKCE).
"use strict";

(function () {
  var handoff = window.opener && window.opener.swaggerUIRedirectOauth2;
  if (!handoff) {
    document.addEventListener("DOMContentLoaded", function () {
      document.body.textContent =
        "This page finishes a sign-in started from the API docs (/docs); open it from there.";
    });
    return;
  }
  var query = window.location.search || window.location.hash;
  var params = new URLSearchParams(query.replace(/^[?#]/, ""));
  var received = {};
  params.forEach(function (value, key) { received[key] = value; });
  var auth = handoff.auth;
  var stateMatches = received.state === handoff.state;
  var flow = auth.schema.get("flow");
  var codeFlow = flow === "accessCode" || flow === "authorizationCode" ||
    flow === "authorization_code";

  if (codeFlow && !auth.code) {
    if (!stateMatches) {
      handoff.errCb({
        authId: auth.name, source: "auth", level: "warning",
        message: "The state returned by the server does not match the one sent; the sign-in was not used.",
      });
    }
    if (received.code && stateMatches) {
      delete handoff.state;
      auth.code = received.code;
      handoff.callback({ auth: auth, redirectUrl: handoff.redirectUrl });
    } else if (!received.code) {
      handoff.errCb({
        authId: auth.name, source: "auth", level: "error",
        message: received.error
          ? received.error + (received.error_description ? ": " + received.error_description : "")
          : "The server sent back no authorization code.",
      });
    }
  } else {
    handoff.callback({ auth: auth, token: received, isValid: stateMatches, redirectUrl: handoff.redirectUrl });
  }
  window.close();
})();
