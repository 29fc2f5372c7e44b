// Swagger UI initialiser for /docs. Kept out of docs.html so that a strict
// Content-Security-Policy (script-src 'self') needs no inline-script exception.
// Everything is served by the gateway itself: no CDN, no online validator,
// no remote OAuth2 redirect page.
"use strict";

window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    validatorUrl: null,
    // The authorization code comes back to our own page (/docs/oauth2-redirect.html).
    oauth2RedirectUrl: window.location.origin + "/docs/oauth2-redirect.html",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
  });
  // "Authorize" signs in with the demo's public client (no secret): code + PKCE.
  window.ui.initOAuth({
    clientId: "demo-docs",
    usePkceWithAuthorizationCodeGrant: true,
    appName: "Commerce gateway API docs",
  });
});
